"""Logs go to stderr always, and to the client as MCP `notifications/message` once it is connected.

stdout is never written: in stdio mode it carries the protocol and nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._redact import redact

if TYPE_CHECKING:
    # The CLI installs the bridge before it knows whether it will serve: keep the SDK off that path.
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.session import ServerSession
    from mcp_types import EmptyResult, LoggingLevel, SetLevelRequestParams

# Our own records, and the language-server client's, go to stderr and to the client.
LOGGER_NAMES = ("loomkin_mcp", "loomkin_lsp_client")

_TO_MCP: dict[int, LoggingLevel] = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "critical",
}
_FROM_MCP: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}
# Records logged before a client is there (config warnings at start-up), replayed to the first one.
_EARLY_RECORDS = 50


def configure_stderr_logging(level: str) -> None:
    """Our records at `level` to stderr; the SDK's own chatter only from WARNING unless debugging."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_RedactingFormatter("loomkin-mcp %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    numeric = logging.getLevelName(level.upper())
    root.setLevel(logging.WARNING if numeric != logging.DEBUG else logging.DEBUG)
    for name in LOGGER_NAMES:
        logging.getLogger(name).setLevel(numeric)


class _RedactingFormatter(logging.Formatter):
    """A record's text with its credentials masked (a URL's password, a token in an upstream's args…)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


@dataclass(frozen=True)
class _Target:
    session: ServerSession
    request_id: Any
    loop: asyncio.AbstractEventLoop


_current: ContextVar[_Target | None] = ContextVar("loomkin_mcp_log_target", default=None)


class McpLogBridge(logging.Handler):
    """Forwards our records to the client that caused them, or the last one seen.

    A record logged while a request is handled goes to that request (so it reaches clients
    of both protocol eras); others go to the most recent connection, where the protocol
    allows connection-level logs.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._last: _Target | None = None
        self._early: deque[logging.LogRecord] = deque(maxlen=_EARLY_RECORDS)
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self) -> McpLogBridge:
        for name in LOGGER_NAMES:
            logging.getLogger(name).addHandler(self)
        return self

    async def middleware(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        target = _Target(ctx.session, ctx.request_id, asyncio.get_running_loop())
        self._last = _Target(ctx.session, None, target.loop)
        token = _current.set(target)
        try:
            # Not during initialize: a client may only be sent messages once it is initialized.
            if self._early and ctx.method != "initialize":
                self._replay_early()
            return await call_next(ctx)
        finally:
            _current.reset(token)

    async def set_level(self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        """`logging/setLevel` from clients of the handshake era."""
        from mcp_types import EmptyResult

        self.setLevel(_FROM_MCP.get(params.level, logging.INFO))
        return EmptyResult()

    def emit(self, record: logging.LogRecord) -> None:
        target = _current.get() or self._last
        if target is None:
            self._early.append(record)
            return
        self._send(target, record)

    def _replay_early(self) -> None:
        # Not tied to the request that happens to come first: a quick one is answered before the task that
        # sends these runs, and the SDK drops notifications related to a request already answered.
        assert self._last is not None
        while self._early:
            record = self._early.popleft()
            if record.levelno >= self.level:
                self._send(self._last, record)

    def _send(self, target: _Target, record: logging.LogRecord) -> None:
        level = _TO_MCP.get(record.levelno, "info")
        message = redact(record.getMessage())

        def spawn() -> None:
            task = asyncio.ensure_future(
                _deliver(target.session, level, message, record.name, target.request_id), loop=target.loop
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is target.loop:
            spawn()
        elif not target.loop.is_closed():
            target.loop.call_soon_threadsafe(spawn)


async def _deliver(session: ServerSession, level: LoggingLevel, message: str, logger: str, request_id: Any) -> None:
    try:
        await session.send_log_message(level, message, logger=logger, related_request_id=request_id)
    except Exception:  # noqa: BLE001 - a closed stream must never break the tool that logged
        pass
