"""Proxied calls relayed as JSON-RPC lines: an editor's `tools/call` of a read-only upstream tool, on stdio, goes
to the upstream's pipe as a line and its answer comes back as one, past both SDK sessions (their parsing,
validation, middleware and task hops cost ~1 ms a call).

A tool is relayed only once the SDK path has called it in this session (so the session's project, its trust and
its roots are settled), while that project serves it with the very same tool, read-only, without an output
schema (the client session would check structured content against it), from a ready stdio upstream. The
answer is what the SDK path gives: the result validated and written as the SDK writes it, and errors, timeouts
and a lost upstream told in the same words. Progress passes through under the relay's own token, a
cancellation reaches the upstream, and the upstream's own requests (sampling, elicitation, roots) go to the
editor as for any call. Everything else — and HTTP — takes the SDK path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types.methods import serialize_server_result
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError

from ._forward import Caller
from ._link import LinkClosed, RawLink
from ._pool import call_failure
from ._tools import read_only

if TYPE_CHECKING:
    from ..project import Project
    from ._upstream import Upstream

logger = logging.getLogger("loomkin_mcp.upstream")

# A call whose line is longer (a large argument) takes the SDK path: it is not parsed twice.
MAX_RELAYED_LINE = 256 * 1024
Record = Callable[[str, dict[str, Any], float, bool], None]
Write = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class _Route:
    project: Project
    upstream: Upstream
    tool: types.Tool
    session: Any
    """The editor's SDK session: where the upstream's own requests go."""
    version: str
    """The session's protocol version: what shape its answers take."""


class Relay:
    """The relayed calls of one stdio editor session."""

    def __init__(self, write: Write, record: Record, failed: Callable[[str], dict[str, Any]]) -> None:
        self._write = write
        self._record = record
        self._failed = failed
        """An error result, as the SDK path writes it."""
        self._routes: dict[str, _Route] = {}
        self._in_flight: dict[Any, asyncio.Task[None]] = {}

    def learn(
        self, exported: str, project: Project, upstream: Upstream, tool: types.Tool, session: Any, version: str | None
    ) -> None:
        """The SDK path called `exported` for this session: later calls may be relayed (in a handshake-era
        session: a 2026-era answer carries per-request stamps the SDK makes)."""
        if read_only(tool) and tool.output_schema is None and version in HANDSHAKE_PROTOCOL_VERSIONS:
            self._routes[exported] = _Route(project, upstream, tool, session, version)

    def forget(self) -> None:
        """The session's roots changed: its next calls find their project again on the SDK path."""
        self._routes.clear()

    def take(self, line: str) -> bool:
        """Whether the relay handles this line from the editor (then the SDK never sees it)."""
        if not (self._routes or self._in_flight) or len(line) > MAX_RELAYED_LINE:
            return False  # (nothing to relay; a long line is read once, by the SDK)
        if '"tools/call"' not in line and '"notifications/cancelled"' not in line:
            if '"notifications/roots/list_changed"' in line:
                self.forget()
            return False
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return False
        params = message.get("params")
        if not isinstance(params, dict):
            return False
        if message.get("method") == "notifications/cancelled":
            call = self._in_flight.get(_key(params.get("requestId")))
            if call is None:
                return False
            call.cancel()  # never answered, as the SDK leaves a cancelled request
            return True
        request_id, name, arguments = message.get("id"), params.get("name"), params.get("arguments", {})
        if (
            message.get("method") != "tools/call"
            or not isinstance(request_id, str | int)
            or isinstance(request_id, bool)
        ):
            return False
        route = self._routes.get(name) if isinstance(name, str) else None
        if route is None or not isinstance(arguments, dict) or _key(request_id) in self._in_flight:
            return False
        found = None if route.project.closed else route.project.upstreams.tool(name)
        if found is None or found[0] is not route.upstream or found[1] is not route.tool:  # (a new list: new tools)
            del self._routes[name]
            return False
        link = route.upstream.link
        if link is None:
            return False
        meta = params.get("_meta")
        token = meta.get("progressToken") if isinstance(meta, dict) else None
        logger.debug("relayed %s", name)
        task = asyncio.ensure_future(self._relay(request_id, name, arguments, token, route, link))
        self._in_flight[_key(request_id)] = task
        task.add_done_callback(lambda _: self._in_flight.pop(_key(request_id), None))
        return True

    async def _relay(
        self, request_id: Any, exported: str, arguments: dict[str, Any], token: Any, route: _Route, link: RawLink
    ) -> None:
        started, ok = time.monotonic(), False
        upstream, tool = route.upstream, route.tool
        callers = upstream.forwarder.callers
        # Asked outside any request of the SDK's (it never saw this one): on stdio there is one stream anyway.
        caller = Caller(route.session, None)
        call_id = link.new_id()
        try:
            with route.project.serving():
                params: dict[str, Any] = {"name": tool.name, "arguments": arguments}
                on_progress = None
                if token is not None and not isinstance(token, bool):
                    params["_meta"] = {"progressToken": call_id}
                    on_progress = self._progress_to(token)
                callers.append(caller)
                try:
                    result = await self._answer(link, call_id, params, on_progress, upstream, tool)
                finally:
                    callers.remove(caller)
            result = serialize_server_result("tools/call", route.version, result)  # as the SDK shapes its answers
            ok = not result.get("isError", False)
            await self._write(_line({"jsonrpc": "2.0", "id": request_id, "result": result}))
        except asyncio.CancelledError:
            link.forget(call_id)
            await _quietly(link.send(_cancelled(call_id, "the editor cancelled the call")))
            raise
        finally:
            self._record(exported, arguments, started, ok)

    async def _answer(
        self,
        link: RawLink,
        call_id: str,
        params: dict[str, Any],
        on_progress: Any,
        upstream: Upstream,
        tool: types.Tool,
    ) -> dict[str, Any]:
        """The result to send the editor, as the SDK path makes it."""
        timeout = upstream.entry.timeout_ms / 1000

        async def failed(error: types.ErrorData) -> dict[str, Any]:
            return self._failed(await call_failure(upstream, tool.name, MCPError.from_error_data(error), timeout))

        request = {"jsonrpc": "2.0", "id": call_id, "method": "tools/call", "params": params}
        try:
            answer = await link.request(call_id, request, on_progress)
            reply = await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            link.forget(call_id)
            await _quietly(link.send(_cancelled(call_id, f"no answer within {timeout:g} s")))
            return await failed(types.ErrorData(code=types.REQUEST_TIMEOUT, message="timed out"))
        except (LinkClosed, ConnectionError):
            return await failed(types.ErrorData(code=types.CONNECTION_CLOSED, message="connection closed"))
        if "error" in reply:
            try:
                error = types.ErrorData.model_validate(reply["error"])
            except ValidationError:
                error = types.ErrorData(code=types.INTERNAL_ERROR, message="an error it did not describe")
            return await failed(error)
        try:
            result = types.CallToolResult.model_validate(reply.get("result"))
        except ValidationError:
            return self._failed(f"{upstream.name} answered {tool.name} with a result loomkin-mcp cannot pass on")
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)

    def _progress_to(self, token: Any) -> Callable[[dict[str, Any]], None]:
        """The upstream's progress of a relayed call, passed to the editor under the editor's own token."""

        def report(params: dict[str, Any]) -> None:
            told = {key: params[key] for key in ("progress", "total", "message") if params.get(key) is not None}
            notice = {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, **told}}
            asyncio.ensure_future(_quietly(self._write(_line(notice))))

        return report


def _key(request_id: Any) -> tuple[type, Any]:
    """A request id as a key: 1 and "1" are different requests."""
    return type(request_id), request_id


def _line(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False) + "\n"


def _cancelled(call_id: str, reason: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": call_id, "reason": reason}}


async def _quietly(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - the editor or the upstream already gone: nothing to tell
        logger.debug("a relayed message could not be written", exc_info=True)
