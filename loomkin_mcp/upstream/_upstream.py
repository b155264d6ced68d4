"""One upstream MCP server: connected, kept connected, and restarted with backoff."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.shared.exceptions import MCPError
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from loomkin_lsp_client import program_missing

from ..config import McpServerEntry
from ._forward import Forwarder
from ._link import RawLink
from ._preflight import fix_for, not_found
from ._transport import ProcessInfo, open_stdio, open_url, url_transports

logger = logging.getLogger("loomkin_mcp.upstream")

_CONNECT_TIMEOUT_SECONDS = 30.0
_MAX_BACKOFF_SECONDS = 30.0
# After a call timed out, how long a ping may take before the server counts as hung and is restarted.
_PING_TIMEOUT_SECONDS = 5.0
# A server that fails to connect this many times in a row with the same error is not retried on its
# own any more (a missing dependency does not fix itself); a call to one of its tools tries it again.
GIVE_UP_AFTER_IDENTICAL_FAILURES = 5


@dataclass(frozen=True)
class UpstreamStatus:
    name: str
    target: str
    state: str
    transport: str | None
    tools: int
    restarts: int
    last_error: str | None
    fix: str | None = None
    """What the person can do about `last_error`, when loomkin-mcp knows."""


class Upstream:
    def __init__(
        self, entry: McpServerEntry, root: Path, on_change: Callable[[], None], max_restarts_per_minute: int
    ) -> None:
        self.entry = entry
        # A server that connected and later died is restarted at once, up to this many times a minute;
        # one that cannot even connect, or dies more often, backs off exponentially.
        self._quick_restarts_per_minute = max_restarts_per_minute
        self.name = entry.name
        self._root = root
        self._on_change = on_change
        self.session: ClientSession | None = None
        self.state = "connecting"
        self.transport: str | None = None
        self.tools: list[types.Tool] = []
        self.resources: list[types.Resource] = []
        self.templates: list[types.ResourceTemplate] = []
        self.prompts: list[types.Prompt] = []
        self.last_error: str | None = None
        self.restarts = 0
        self._process: ProcessInfo | None = None
        self._link: RawLink | None = None
        self._hung = False
        self._lost = anyio.Event()
        self._settled = anyio.Event()
        """Set once the first attempt to connect has ended, either way."""
        self._retry = anyio.Event()
        """Set to try again after giving up (state "failed")."""
        self.forwarder = Forwarder(entry.name, root)
        """Passes the upstream's sampling, elicitation and roots requests on to the calling editor."""

    @property
    def target(self) -> str:
        return self.entry.url or " ".join([self.entry.command or "", *self.entry.args])

    def status(self) -> UpstreamStatus:
        fix = self.fix() if self.state != "ready" else None
        return UpstreamStatus(
            self.name, self.target, self.state, self.transport, len(self.tools), self.restarts, self.last_error, fix
        )

    def fix(self) -> str | None:
        """What the person can do about the last error, in a clause (None when there is none)."""
        return fix_for(self.entry, self.last_error) if self.last_error else None

    async def retry(self, timeout: float) -> None:
        """Try a server given up on once more (a call for one of its tools), waiting up to `timeout` for it."""
        if self.state == "failed":
            self._settled = anyio.Event()
            self._retry.set()
        await self.wait_settled(timeout)

    async def wait_settled(self, timeout: float) -> None:
        """Wait until the first connection attempt succeeded or failed (at most `timeout` seconds)."""
        with anyio.move_on_after(timeout):
            await self._settled.wait()

    # -- the supervisor -------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve until the connection is lost, wait, reconnect; until cancelled.

        A server that fails the same way GIVE_UP_AFTER_IDENTICAL_FAILURES times in a row without
        connecting is left "failed", its error and fix on show, until a call asks for it again.
        """
        failures = 0
        identical = 0
        restarts: deque[float] = deque()
        reported: str | None = None
        while True:
            connected = False
            previous_error = self.last_error
            self._hung = False
            try:
                async with self._connected() as session:
                    await self._refresh(session)
                    self.session, self.state, connected = session, "ready", True
                    self._settled.set()
                    logger.info("upstream %s ready (%s, %d tools)", self.name, self.transport, len(self.tools))
                    self._on_change()
                    await self._lost.wait()
                    self.last_error = self._why_lost()
            except Exception as exc:  # noqa: BLE001 - any failure of an upstream is reported, never fatal
                self.last_error = self._why_failed(exc)
                self._settled.set()
            finally:
                was_ready = self.session is not None
                self.session, self.state, self.tools, self.resources, self.prompts = None, "down", [], [], []
                self.templates = []
                self._lost = anyio.Event()
                if was_ready:
                    self._on_change()
            now = time.monotonic()
            restarts.append(now)
            while restarts[0] < now - 60:
                restarts.popleft()
            failures = 0 if connected and len(restarts) <= self._quick_restarts_per_minute else failures + 1
            identical = 0 if connected or self.last_error != previous_error else identical + 1
            if identical + 1 >= GIVE_UP_AFTER_IDENTICAL_FAILURES:
                self.state = "failed"
                logger.warning(
                    "upstream %s, %d times in a row; it is not retried until one of its tools is called. Fix: %s.",
                    self.last_error, identical + 1, self.fix(),
                )  # fmt: skip
                self._on_change()
                await self._retry.wait()
                self._retry = anyio.Event()
                # One more attempt: failing the same way again gives up again at once.
                failures, identical = 0, GIVE_UP_AFTER_IDENTICAL_FAILURES - 1
                self.state = "down"
                continue
            delay = min(0.25 * 2 ** (failures - 1), _MAX_BACKOFF_SECONDS) if failures else 0.1
            if self.last_error != reported:
                # Once per distinct problem: a missing command would otherwise repeat every retry.
                logger.warning("upstream %s; retrying with backoff", self.last_error)
                reported = self.last_error
            self.restarts += 1
            await anyio.sleep(delay)

    @asynccontextmanager
    async def _connected(self) -> AsyncIterator[ClientSession]:
        """An initialized session over the first transport that works (stdio, or HTTP then SSE)."""
        candidates = ["stdio"] if self.entry.command else url_transports(self.entry.url or "")
        last: Exception | None = None
        for transport in candidates:
            connected = False
            try:
                async with AsyncExitStack() as stack:
                    streams = await stack.enter_async_context(self._open(transport))
                    session = await stack.enter_async_context(
                        ClientSession(
                            streams[0],
                            streams[1],
                            message_handler=self._on_message,
                            sampling_callback=self.forwarder.sampling,
                            elicitation_callback=self.forwarder.elicitation,
                            list_roots_callback=self.forwarder.roots,
                        )
                    )
                    with anyio.fail_after(_CONNECT_TIMEOUT_SECONDS):
                        await session.initialize()
                    self.transport, connected = transport, True
                    yield session
                    return
            except Exception as exc:  # noqa: BLE001 - before connecting: try the next transport
                if connected:
                    raise
                last = exc
        assert last is not None
        raise last

    @property
    def link(self) -> RawLink | None:
        """Where a call may be relayed as JSON-RPC lines: a ready stdio upstream's pipe, in the handshake era (a
        2026-era request carries the session's per-request envelope)."""
        link, session = self._link, self.session
        ready = link is not None and link.open and session is not None
        return link if ready and session.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS else None

    def _open(self, transport: str) -> Any:
        if transport == "stdio":
            self._process, self._link = ProcessInfo(), RawLink()
            transport_streams = open_stdio(self.entry, self._root, self._process, self._link)
            return _watch_exit(transport_streams, self._process, self._lost)
        return open_url(self.entry, transport)

    async def _refresh(self, session: ClientSession) -> None:
        capabilities = session.server_capabilities
        self.tools = (await session.list_tools()).tools if capabilities and capabilities.tools else []
        self.resources = (await session.list_resources()).resources if capabilities and capabilities.resources else []
        self.templates = await self._templates(session) if capabilities and capabilities.resources else []
        self.prompts = (await session.list_prompts()).prompts if capabilities and capabilities.prompts else []

    async def _templates(self, session: ClientSession) -> list[types.ResourceTemplate]:
        # Templates came later than resources: a server with resources but no templates/list still serves.
        try:
            return (await session.list_resource_templates()).resource_templates
        except MCPError as exc:
            logger.info("upstream %s lists no resource templates: %s", self.name, exc.error.message)
            return []

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            logger.debug("upstream %s sent something unreadable: %s", self.name, message)
        elif isinstance(message, types.ToolListChangedNotification | types.ResourceListChangedNotification):
            await self._resync()
        elif isinstance(message, types.PromptListChangedNotification):
            await self._resync()

    async def _resync(self) -> None:
        if self.session is not None:
            try:
                await self._refresh(self.session)
            except MCPError as exc:
                logger.info("upstream %s: re-listing after list_changed failed: %s", self.name, exc)
                return
            self._on_change()

    async def connection_lost(self) -> str:
        """A call found the connection broken: say why (its exit, for a process), and reconnect."""
        if self._process is not None:
            with anyio.move_on_after(1.0):
                await self._process.exited.wait()
        self._lost.set()
        return self._why_lost()

    async def answers_ping(self, timeout: float) -> bool:
        """After a call timed out: is the server alive but slow, or hung (then it is restarted)?"""
        session = self.session
        if session is None:
            return False
        try:
            with anyio.fail_after(min(timeout, _PING_TIMEOUT_SECONDS)):
                await session.send_ping()
            return True
        except (TimeoutError, MCPError):
            # A stopped process or one babbling on stdout: only a restart brings it back.
            self._hung = True
            if self._process is not None:
                self._process.hung = True
            self._lost.set()
            return False

    def _why_lost(self) -> str:
        if self._hung:
            return f"{self.name} stopped answering, even pings"
        if self._process is not None and self._process.exited.is_set():
            return f"{self.name} {self._process.describe_exit()}"
        return f"{self.name} closed the connection"

    def _why_failed(self, exc: BaseException) -> str:
        exc = _root_cause(exc)
        if self._process is not None and self._process.exited.is_set():
            return f"{self.name} {self._process.describe_exit()}"
        if isinstance(exc, OSError) and program_missing(self.entry.command or "", exc):
            return not_found(self.entry)
        if isinstance(exc, TimeoutError):
            return f"{self.name} did not finish connecting within {_CONNECT_TIMEOUT_SECONDS:.0f} s"
        text = str(exc) or type(exc).__name__
        if self.entry.url:
            return f"{self.name} at {self.entry.url} could not be reached ({text[:200]})"
        return f"{self.name} failed: {text[:200]}"

    def down_message(self) -> str:
        if self.last_error is None:
            return f"{self.name} is still connecting; try again in a moment."
        if self.state == "failed":
            return f"{self.last_error}, time after time, so it is no longer retried on its own; {self.fix()}."
        if "was not found" in self.last_error:
            return f"{self.last_error}."
        return f"{self.last_error}; it is being reconnected, try again shortly."

    @property
    def connect_timeout(self) -> float:
        return _CONNECT_TIMEOUT_SECONDS


def _root_cause(exc: BaseException) -> BaseException:
    """The first real error inside task-group wrappers (transports fail inside their task groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@asynccontextmanager
async def _watch_exit(transport: Any, info: ProcessInfo, lost: anyio.Event) -> AsyncIterator[Any]:
    """The stdio transport, with `lost` set as soon as the process exits."""
    async with transport as streams, anyio.create_task_group() as group:

        async def watch() -> None:
            await info.exited.wait()
            lost.set()

        group.start_soon(watch)
        yield streams
        group.cancel_scope.cancel()
