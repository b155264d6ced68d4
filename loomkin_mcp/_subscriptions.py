"""`resources/updated` for clients that subscribed to a resource, in both protocol eras.

Handshake-era clients send `resources/subscribe` and get `notifications/resources/updated`
on their session; 2026-era clients listen through `subscriptions/listen`, fed by the SDK's bus.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext
    from mcp.server.session import ServerSession
    from mcp.server.subscriptions import SubscriptionBus
    from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

# Diagnostics arrive in bursts (one publish per file); tell subscribers once per burst.
_COALESCE_SECONDS = 0.1


class ResourceSubscriptions:
    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        self._sessions: dict[str, list[ServerSession]] = {}
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        from mcp_types import EmptyResult

        sessions = self._sessions.setdefault(str(params.uri), [])
        if ctx.session not in sessions:
            sessions.append(ctx.session)
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        from mcp_types import EmptyResult

        sessions = self._sessions.get(str(params.uri), [])
        if ctx.session in sessions:
            sessions.remove(ctx.session)
        return EmptyResult()

    def changed(self, uri: str) -> None:
        """Note that `uri` changed; subscribers hear of it once the burst of changes settles."""
        if uri in self._pending:
            return
        self._pending.add(uri)
        task = asyncio.ensure_future(self._notify(uri))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, uri: str) -> None:
        from mcp.shared.subscriptions import ResourceUpdated

        await asyncio.sleep(_COALESCE_SECONDS)
        self._pending.discard(uri)
        await self._bus.publish(ResourceUpdated(uri=uri))
        for session in list(self._sessions.get(uri, [])):
            try:
                await session.send_resource_updated(uri)
            except Exception:  # noqa: BLE001 - a closed session unsubscribes itself
                with contextlib.suppress(ValueError):
                    self._sessions[uri].remove(session)
