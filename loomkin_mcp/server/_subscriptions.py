"""Telling connected clients that something changed, in both protocol eras.

Handshake-era clients get `notifications/tools/list_changed` (and the prompts and resources
ones) on every session we have seen, and `notifications/resources/updated` for resources
they subscribed to with `resources/subscribe`. 2026-era clients listen through
`subscriptions/listen`, fed by the SDK's bus.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.session import ServerSession
    from mcp.server.subscriptions import SubscriptionBus
    from mcp_types import EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

# Changes arrive in bursts (a publish per file, a list per upstream): one notice per burst.
_COALESCE_SECONDS = 0.1
# A long-lived HTTP daemon sees many short sessions: remember only the latest ones.
_MAX_SESSIONS = 64


def client_of(session: ServerSession) -> Any:
    """What a session object speaks for: the SDK makes one per request, all over one connection."""
    return getattr(session, "_connection", session)


class ClientNotifier:
    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        # Per client (connection): its latest session object, and when it was first seen.
        self._clients: dict[Any, tuple[ServerSession, float]] = {}
        self._subscribed: dict[str, dict[Any, ServerSession]] = {}
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "initialize":
            client = client_of(ctx.session)
            since = self._clients.pop(client, (None, time.time()))[1]
            self._clients[client] = (ctx.session, since)  # the most recently active last
            while len(self._clients) > _MAX_SESSIONS:
                del self._clients[next(iter(self._clients))]
        return await call_next(ctx)

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        from mcp_types import EmptyResult

        self._subscribed.setdefault(str(params.uri), {})[client_of(ctx.session)] = ctx.session
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        from mcp_types import EmptyResult

        self._subscribed.get(str(params.uri), {}).pop(client_of(ctx.session), None)
        return EmptyResult()

    def clients(self) -> list[tuple[ServerSession, float]]:
        """Each client seen (latest first went quiet last): a session object of it, and since when (Unix time)."""
        return list(self._clients.values())

    def sessions(self) -> list[ServerSession]:
        """A session object of each client seen, the most recently active last."""
        return [session for session, _ in self._clients.values()]

    def resource_updated(self, uri: str) -> None:
        self._soon(f"resource:{uri}")

    def lists_changed(self) -> None:
        """Tools, prompts and resources may all have changed (an upstream came or went)."""
        self._soon("lists")

    def _soon(self, what: str) -> None:
        if what in self._pending:
            return
        self._pending.add(what)
        task = asyncio.ensure_future(self._notify(what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, what: str) -> None:
        from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ResourceUpdated, ToolsListChanged

        await asyncio.sleep(_COALESCE_SECONDS)
        self._pending.discard(what)
        if what == "lists":
            for event in (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged()):
                await self._bus.publish(event)
            for client, (session, _) in list(self._clients.items()):
                for method in ("send_tool_list_changed", "send_prompt_list_changed", "send_resource_list_changed"):
                    if not await self._send(session, method):
                        self._clients.pop(client, None)
                        break
            return
        uri = what.removeprefix("resource:")
        await self._bus.publish(ResourceUpdated(uri=uri))
        subscribed = self._subscribed.get(uri, {})
        for client, session in list(subscribed.items()):
            if not await self._send(session, "send_resource_updated", uri):
                subscribed.pop(client, None)

    @staticmethod
    async def _send(session: ServerSession, method: str, *args: Any) -> bool:
        """False when the client is gone (it is then forgotten; never an error for anyone else)."""
        try:
            await getattr(session, method)(*args)
        except Exception:  # noqa: BLE001 - a closed session
            return False
        return True
