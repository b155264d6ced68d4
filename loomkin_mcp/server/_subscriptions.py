"""Telling connected clients that something changed, in both protocol eras.

Handshake-era clients get `notifications/tools/list_changed` (and the prompts and resources
ones) on every session we have seen, and `notifications/resources/updated` for resources
they subscribed to with `resources/subscribe`. 2026-era clients listen through
`subscriptions/listen`, fed by the SDK's bus.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
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
    """`project_of(client)`: the root a client is served (None while unknown), so that a project's changes reach
    its own clients only."""

    def __init__(self, bus: SubscriptionBus, project_of: Callable[[Any], Path | None] = lambda client: None) -> None:
        self._bus = bus
        self._project_of = project_of
        # Per client (connection): its latest session object, and when it was first seen.
        self._clients: dict[Any, tuple[ServerSession, float]] = {}
        self._subscribed: dict[str, dict[Any, ServerSession]] = {}
        self._pending: set[tuple[str, Path | None]] = set()
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

    def sessions(self, project: Path | None = None) -> list[ServerSession]:
        """A session object of each client seen (of `project`'s, when given), the most recently active last."""
        return [
            session
            for client, (session, _) in self._clients.items()
            if project is None or self._project_of(client) == project
        ]

    def resource_updated(self, uri: str, project: Path | None = None) -> None:
        """`uri` changed (for the clients of `project` only, when given)."""
        self._soon(f"resource:{uri}", project)

    def lists_changed(self, project: Path | None = None) -> None:
        """Tools, prompts and resources may all have changed (an upstream of `project`, when given, came or went)."""
        self._soon("lists", project)

    def _soon(self, what: str, project: Path | None) -> None:
        if (what, project) in self._pending:
            return
        self._pending.add((what, project))
        task = asyncio.ensure_future(self._notify(what, project))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _notify(self, what: str, project: Path | None) -> None:
        from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ResourceUpdated, ToolsListChanged

        await asyncio.sleep(_COALESCE_SECONDS)
        self._pending.discard((what, project))

        def concerned(client: Any) -> bool:
            return project is None or self._project_of(client) == project

        if what == "lists":
            for event in (ToolsListChanged(), PromptsListChanged(), ResourcesListChanged()):
                await self._bus.publish(event)
            for client, (session, _) in list(self._clients.items()):
                if not concerned(client):
                    continue
                for method in ("send_tool_list_changed", "send_prompt_list_changed", "send_resource_list_changed"):
                    if not await self._send(session, method):
                        self._clients.pop(client, None)
                        break
            return
        uri = what.removeprefix("resource:")
        await self._bus.publish(ResourceUpdated(uri=uri))
        subscribed = self._subscribed.get(uri, {})
        for client, session in list(subscribed.items()):
            if concerned(client) and not await self._send(session, "send_resource_updated", uri):
                subscribed.pop(client, None)

    @staticmethod
    async def _send(session: ServerSession, method: str, *args: Any) -> bool:
        """False when the client is gone (it is then forgotten; never an error for anyone else)."""
        try:
            await getattr(session, method)(*args)
        except Exception:  # noqa: BLE001 - a closed session
            return False
        return True
