"""Telling connected clients that something changed, in both protocol eras.

Handshake-era clients get `notifications/tools/list_changed` (and the prompts and resources
ones) on every session we have seen, and `notifications/resources/updated` for resources
they subscribed to with `resources/subscribe`. 2026-era clients listen through
`subscriptions/listen`, fed by the SDK's bus.
"""

from __future__ import annotations

import asyncio
import contextlib
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


class ClientNotifier:
    def __init__(self, bus: SubscriptionBus) -> None:
        self._bus = bus
        self._sessions: list[ServerSession] = []
        self._subscribed: dict[str, list[ServerSession]] = {}
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method != "initialize" and ctx.session not in self._sessions:
            self._sessions.append(ctx.session)
            del self._sessions[:-_MAX_SESSIONS]
        return await call_next(ctx)

    async def subscribe(self, ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        from mcp_types import EmptyResult

        sessions = self._subscribed.setdefault(str(params.uri), [])
        if ctx.session not in sessions:
            sessions.append(ctx.session)
        return EmptyResult()

    async def unsubscribe(self, ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        from mcp_types import EmptyResult

        with contextlib.suppress(ValueError):
            self._subscribed.get(str(params.uri), []).remove(ctx.session)
        return EmptyResult()

    def sessions(self) -> list[ServerSession]:
        """Handshake-era sessions seen so far, newest last."""
        return list(self._sessions)

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
            for session in list(self._sessions):
                await self._send(session, self._sessions, "send_tool_list_changed")
                await self._send(session, self._sessions, "send_prompt_list_changed")
                await self._send(session, self._sessions, "send_resource_list_changed")
            return
        uri = what.removeprefix("resource:")
        await self._bus.publish(ResourceUpdated(uri=uri))
        subscribed = self._subscribed.get(uri, [])
        for session in list(subscribed):
            await self._send(session, subscribed, "send_resource_updated", uri)

    @staticmethod
    async def _send(session: ServerSession, registry: list[ServerSession], method: str, *args: Any) -> None:
        try:
            await getattr(session, method)(*args)
        except Exception:  # noqa: BLE001 - a closed session is dropped, never an error for anyone else
            with contextlib.suppress(ValueError):
                registry.remove(session)
