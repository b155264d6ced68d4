"""loomkin-mcp over HTTP: streamable HTTP at /mcp, or legacy SSE at /sse, for any number of clients.

One process serves them all: one workspace, one set of language servers, one repo index, one
upstream pool (entered once by the app's lifespan); each client has its own MCP session.
Security as the MCP spec asks: loopback by default, Host and Origin validated (foreign origins
get 403), a bearer token required to bind anything but loopback (401 without it, compared in
constant time), request bodies capped. Bounded against clients that never leave: at most
`max_sessions` live sessions (the one idle longest is closed to make room), sessions idle past
`session_idle_timeout` closed, at most `max_connections` connections at once (503 past that),
and a connection that has not sent a whole request head within `header_timeout` closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import itertools
import json
import logging
import math
import secrets
import socket
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
from mcp_types import INVALID_PARAMS, INVALID_REQUEST
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.requests import cookie_parser
from uvicorn.protocols.http.h11_impl import H11Protocol

from .._errors import ConfigError
from .._limits import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ..project._registry import ProjectRegistry
    from ..server._server import LoomkinServer

logger = logging.getLogger("loomkin_mcp.http")

Transport = Literal["streamable-http", "sse"]
PATHS = {"streamable-http": "/mcp", "sse": "/sse"}
HEALTH_PATH, STATUS_PATH = "/health", "/status.json"
PAGE_COOKIE = "loomkin_status"
# The page's feed looks for changes this often, and says it is alive when nothing changed for a while.
PAGE_POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
# Open status pages at once (each holds a connection and a feed); past this, 503.
MAX_STATUS_STREAMS = 16
# The page runs only its own script and style, and is never framed (it shows the project).
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
# Every protocol version a client may name in `MCP-Protocol-Version` (the handshake eras and the modern one).
SPOKEN_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
# Told to clients in each SSE stream's priming event: how soon to reconnect a dropped stream (ms).
RETRY_MS = 1000
# What all sessions together keep of their SSE events for resumption (Last-Event-ID).
MAX_RESUMABLE_BYTES = 64 << 20
MAX_RESUMABLE_EVENTS = 20_000


@dataclass(frozen=True)
class Limits:
    """How much of the daemon clients may hold (`--max-sessions`, `--session-idle-timeout`, `--max-connections`,
    `--header-timeout`)."""

    max_sessions: int = 100
    session_idle_timeout: float = 30 * 60
    max_connections: int = 1000
    header_timeout: float = 10.0
    """A request head (request line and headers) must arrive whole within this: against slow-header clients."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def local_address(host: str) -> str:
    """Where a program on this machine reaches a daemon bound to `host` (a wildcard means loopback)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    if address.is_unspecified:
        return "[::1]" if address.version == 6 else "127.0.0.1"
    return f"[{address}]" if address.version == 6 else str(address)


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host} would expose the project beyond this machine without a token; "
            "set LOOMKIN_TOKEN or pass --token-file, or bind 127.0.0.1."
        )


def _security(host: str, port: int) -> Any:
    """The Host and Origin checks for a daemon bound to `host`:`port` (DNS rebinding, other sites' pages)."""
    from mcp.server.transport_security import TransportSecuritySettings

    names = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else _own_names(host)
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:{port}" for name in names] + [f"{name}:*" for name in names],
        allowed_origins=[f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")],
    )


def page_server(server: LoomkinServer, port: int) -> Any:
    """The status page alone, on 127.0.0.1:`port`, for a stdio session (`--status-port`): a uvicorn server
    to run beside the stdio loop, which handles the signals (`should_exit` stops it)."""
    import uvicorn
    from starlette.applications import Starlette

    app = Starlette()
    app.state.stopping = asyncio.Event()
    _add_status_routes(app, server, _security("127.0.0.1", port), None, app.state.stopping)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    return _stoppable(config, app.state.stopping, owns_signals=False)


def _stoppable(config: Any, stopping: asyncio.Event, owns_signals: bool) -> Any:
    """A uvicorn server that sets `stopping` as it starts to stop, before it waits for the open responses to end
    (the page's feeds, which never end by themselves); `owns_signals=False` leaves SIGINT/SIGTERM to the
    stdio loop it runs beside."""
    import uvicorn

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            stopping.set()
            await super().shutdown(sockets)

        if not owns_signals:

            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

    return Server(config)


def build_app(
    server: LoomkinServer, transport: Transport, host: str, port: int, token: str | None, limits: Limits = Limits()
) -> Starlette:
    security = _security(host, port)
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host, max_request_body_size=MAX_MESSAGE_BYTES)
    else:
        app = server.streamable_http_app(
            transport_security=security, host=host, max_request_body_size=MAX_MESSAGE_BYTES,
            session_idle_timeout=limits.session_idle_timeout, max_sessions=None, retry_interval=RETRY_MS,
        )  # fmt: skip
        _manage_sessions(server._lowlevel_server._session_manager, limits.max_sessions, EventLog())
        app.add_middleware(ProtocolChecks, path=PATHS["streamable-http"])
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        # Shared by every client, entered once for the daemon's life.
        async with server.shared_resources(), inner(application) as state:
            # A daemon's projects connect their upstreams at once, not at their first client's handshake.
            server.projects.begin_background()
            yield state

    app.router.lifespan_context = lifespan
    # Set when the daemon starts to stop: the streams that never end by themselves (the page's feed) end then.
    app.state.stopping = asyncio.Event()
    _add_status_routes(app, server, security, token, app.state.stopping)
    if token:
        app.add_middleware(BearerToken, token=token)
    return app


def _add_status_routes(
    app: Starlette, server: LoomkinServer, security: Any, token: str | None, stopping: asyncio.Event
) -> None:
    """The status page (`/`), its live feed (`/status/events`, SSE), `/status.json` and `/health`: read-only,
    behind the same Host and Origin checks as the MCP endpoint (and the token, see BearerToken)."""
    from importlib import resources

    from mcp.server.transport_security import TransportSecurityMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    from ..server._status import health, page_state, snapshot

    guard = TransportSecurityMiddleware(security)
    page = resources.files("loomkin_mcp").joinpath("status_page.html").read_text(encoding="utf-8")

    async def page_route(request: Request) -> Response:
        return await guard.validate_request(request) or HTMLResponse(page, headers=PAGE_HEADERS)

    async def health_route(request: Request) -> Response:
        return await guard.validate_request(request) or JSONResponse(health(server.started))

    async def status_route(request: Request) -> Response:
        # In a worker thread: what the snapshot reads (the decision store above all) never stalls the event loop.
        refused = await guard.validate_request(request)
        if refused is not None:
            return refused
        asked = request.query_params.get("project")  # one project in full (`loomkin-mcp status` in it)
        project = Path(asked) if asked else None
        return JSONResponse(await anyio.to_thread.run_sync(lambda: snapshot(server, project=project)))

    shared = PageFeed(server, page_state)

    async def events_route(request: Request) -> Response:
        refused = await guard.validate_request(request)
        if refused is not None:
            return refused
        if len(shared.streams) >= MAX_STATUS_STREAMS:
            message = f"{MAX_STATUS_STREAMS} status pages are open already; close one and reload."
            return JSONResponse({"error": message}, status_code=503)
        # Held by the feed below: when the response is gone, so is the stream's place.
        place = _StreamPlace()
        shared.streams.add(place)

        async def feed() -> AsyncIterator[str]:
            last, quiet, _ = "", 0.0, place
            while not stopping.is_set() and not await request.is_disconnected():
                state = await shared.current()
                if state != last:
                    last, quiet = state, 0.0
                    yield f"data: {state}\n\n"
                elif quiet >= KEEPALIVE_SECONDS:
                    quiet = 0.0
                    yield ": still here\n\n"
                # A plain sleep: the loop sees `stopping` within one poll (waiting on the event with
                # asyncio.wait_for ended a feed now and then under Starlette's own disconnect listener).
                await asyncio.sleep(PAGE_POLL_SECONDS)
                quiet += PAGE_POLL_SECONDS

        return StreamingResponse(feed(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    async def login_route(request: Request) -> Response:
        # Reached only with the right bearer token (BearerToken): the page keeps a derived value, not the token.
        refused = await guard.validate_request(request, is_post=False)
        if refused is not None or token is None:
            return refused or JSONResponse({"error": "no token is configured"}, status_code=400)
        answer = JSONResponse({"ok": True})
        answer.set_cookie(PAGE_COOKIE, page_cookie(token), httponly=True, samesite="strict", path="/")
        return answer

    app.router.routes[:0] = [
        Route("/", page_route),
        Route(HEALTH_PATH, health_route),
        Route(STATUS_PATH, status_route),
        Route("/status/events", events_route),
        Route("/status/login", login_route, methods=["POST"]),
    ]


class _StreamPlace:
    """One open status page's place among MAX_STATUS_STREAMS."""


class PageFeed:
    """The status page's state, shared by every open page: made at most once per PAGE_POLL_SECONDS whatever the
    number of pages, in a worker thread (reading the decision store must not stall the event loop)."""

    def __init__(self, server: LoomkinServer, make: Any) -> None:
        self._server, self._make = server, make
        self._lock = asyncio.Lock()
        self._state, self._at = "", -math.inf
        self.streams: weakref.WeakSet[_StreamPlace] = weakref.WeakSet()

    async def current(self) -> str:
        async with self._lock:
            if time.monotonic() - self._at >= PAGE_POLL_SECONDS:
                self._state = await anyio.to_thread.run_sync(lambda: json.dumps(self._make(self._server)))
                self._at = time.monotonic()
            return self._state


def page_cookie(token: str) -> str:
    return hmac.new(token.encode(), b"loomkin-mcp status page", "sha256").hexdigest()


class BearerToken:
    """401 unless `Authorization: Bearer <token>` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self._cookie = page_cookie(token).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # `/health` says only "ok" and the version: process managers ask it without a token. The page itself
        # holds no data (it asks for the token, then reads the status routes with the cookie it gets).
        if scope["type"] != "http" or scope["path"] in (HEALTH_PATH, "/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"authorization", b"")
        by_cookie = scope["path"].startswith("/status") and hmac.compare_digest(
            cookie_parser(headers.get(b"cookie", b"").decode("latin-1")).get(PAGE_COOKIE, "").encode(), self._cookie
        )
        if not hmac.compare_digest(given, self._expected) and not by_cookie:
            body = json.dumps({"error": "missing or wrong bearer token; send Authorization: Bearer <token>"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": body.encode()})
            return
        await self.app(scope, receive, send)


def _own_names(host: str) -> list[str]:
    """What clients may send as `Host` to a daemon bound to `host`: it, and for a wildcard address
    (`0.0.0.0`, `::`) every address and name of this machine, loopback included."""
    names = [host]
    try:
        wildcard = ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        wildcard = False
    if wildcard:
        names += ["127.0.0.1", "localhost", "[::1]", socket.gethostname(), socket.getfqdn()]
        for info in _addresses():
            names.append(f"[{info}]" if ":" in info else info)
    return list(dict.fromkeys(names))


def _addresses() -> list[str]:
    found: list[str] = []
    for name in (socket.gethostname(), socket.getfqdn()):
        try:
            found += [str(info[4][0]) for info in socket.getaddrinfo(name, None)]
        except OSError:
            continue
    return found


def _manage_sessions(manager: Any, limit: int, events: EventLog) -> None:
    """At `limit` live sessions, a new one closes the session idle longest instead of being refused; and
    each session keeps its SSE events (in `events`' shared budget) so that a dropped stream can resume.

    Only when every session has a request in flight is the newcomer refused (503). This reaches into
    the SDK's session manager (`_admit_session`, `_server_instances`) and transport (`_event_store`): it
    has a cap, but refuses at it, and its one event store for all sessions would replay one session's
    events to another whose stream has the same id (`_GET_stream`, or a request id).
    """
    admit = manager._admit_session

    def admit_evicting(requestor: Any) -> Any:
        sessions = manager._server_instances
        if len(sessions) >= limit:
            idle = [
                (transport.idle_scope.deadline, session_id)
                for session_id, transport in sessions.items()
                if transport.idle_scope is not None and math.isfinite(transport.idle_scope.deadline)
            ]
            if not idle:
                return None
            _, session_id = min(idle)
            logger.info("closing the session idle longest (%s) to make room for a new one", session_id[:8])
            sessions.pop(session_id).idle_scope.cancel()
        transport = admit(requestor)
        if transport is not None:
            transport._event_store = SessionEvents(events)
        return transport

    manager._admit_session = admit_evicting


class EventLog:
    """The SSE events every session keeps for resumption, oldest dropped first past a shared budget."""

    def __init__(self, max_bytes: int = MAX_RESUMABLE_BYTES, max_events: int = MAX_RESUMABLE_EVENTS) -> None:
        self._order: deque[tuple[SessionEvents, str, int]] = deque()
        self._bytes = 0
        self._max_bytes, self._max_events = max_bytes, max_events

    def add(self, owner: SessionEvents, event_id: str, size: int) -> None:
        self._order.append((owner, event_id, size))
        self._bytes += size
        while self._order and (self._bytes > self._max_bytes or len(self._order) > self._max_events):
            old_owner, old_id, old_size = self._order.popleft()
            self._bytes -= old_size
            old_owner.forget(old_id)


class SessionEvents:
    """One session's SSE events (the SDK's `EventStore` interface): ids unguessable, replay within the session."""

    def __init__(self, log: EventLog) -> None:
        self._log = log
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count()
        self._events: OrderedDict[str, tuple[str, Any]] = OrderedDict()

    async def store_event(self, stream_id: str, message: Any) -> str:
        event_id = f"{self._prefix}-{next(self._count)}"
        self._events[event_id] = (stream_id, message)
        size = 64 + (len(message.model_dump_json(by_alias=True, exclude_unset=True)) if message is not None else 0)
        self._log.add(self, event_id, size)
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: Any) -> str | None:
        from mcp.server.streamable_http import EventMessage

        if last_event_id not in self._events:
            return None  # unknown, expired, or another session's: nothing to replay
        stream_id = self._events[last_event_id][0]
        after = False
        for event_id, (stream, message) in list(self._events.items()):
            if after and stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
            after = after or event_id == last_event_id
        return stream_id

    def forget(self, event_id: str) -> None:
        self._events.pop(event_id, None)


class ProtocolChecks:
    """Streamable HTTP requests the SDK would take wrongly, answered as the spec says, in one sentence.

    A request whose `id` is null (or an object, array or boolean), `params` that are not an object, `initialize`
    on a session already initialized, and an `MCP-Protocol-Version` this server does not speak: 400 with a
    JSON-RPC error.
    """

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self._path:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        version = headers.get(b"mcp-protocol-version", b"").decode("latin-1")
        if version and version not in SPOKEN_VERSIONS:
            spoken = ", ".join(SPOKEN_VERSIONS)
            message = f"MCP-Protocol-Version {version!r} is not spoken here; this server speaks {spoken}"
            await _jsonrpc_error(send, None, INVALID_REQUEST, message)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        buffered = await _buffered(receive, MAX_MESSAGE_BYTES)
        if buffered is None:
            await _jsonrpc_error(send, None, INVALID_REQUEST, f"the request body is over {MAX_MESSAGE_BYTES >> 20} MB; "
                                 "send less at once", status=413)  # fmt: skip
            return
        body, replay = buffered
        problem = _problem(body, has_session=b"mcp-session-id" in headers)
        if problem is None:
            await self.app(scope, replay, send)
        else:
            await _jsonrpc_error(send, *problem)


def _problem(body: bytes, has_session: bool) -> tuple[Any, int, str] | None:
    """(id, code, message) for a message this server refuses before the SDK sees it, else None."""
    try:
        message = json.loads(body)
    except ValueError:
        return None  # the SDK answers a parse error itself
    if not isinstance(message, dict) or "method" not in message:
        return None
    request_id = message.get("id")
    if "id" in message and request_id is None:
        return None, INVALID_REQUEST, "a request's id must be a string or a number, not null (a notification has none)"
    if "id" in message and (isinstance(request_id, bool) or not isinstance(request_id, (str, int, float))):
        kind = {bool: "a boolean", dict: "an object", list: "an array"}.get(type(request_id), "that")
        return None, INVALID_REQUEST, f"a request's id must be a string or a number, not {kind}"
    if "params" in message and not isinstance(message["params"], dict):
        kind = type(message["params"]).__name__
        return request_id, INVALID_PARAMS, f"params must be an object of named parameters, not a {kind}"
    if message["method"] == "initialize" and has_session:
        again = "this session is already initialized; to start over, send initialize without an Mcp-Session-Id header"
        return request_id, INVALID_REQUEST, again
    return None


async def _buffered(receive: Receive, limit: int) -> tuple[bytes, Receive] | None:
    """The whole request body and a `receive` that hands it over again; None past `limit` bytes (read no further)."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        event = await receive()
        if event["type"] != "http.request":
            break
        chunks.append(event.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        more = event.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _jsonrpc_error(send: Send, request_id: Any, code: int, message: str, status: int = 400) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message + "."}})
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})


class SlowClientGuard(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request head does not arrive in time."""

    header_timeout = Limits.header_timeout
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before and self.cycle is not None:
            self._disarm()  # a whole request head arrived

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()


async def serve(
    server: LoomkinServer, transport: Transport, host: str, port: int, token: str | None, limits: Limits = Limits()
) -> None:
    """Serve until SIGINT / SIGTERM; uvicorn then stops taking requests and the lifespan cleans up."""
    import uvicorn

    check_binding(host, token)
    app = build_app(server, transport, host, port, token, limits)
    config = uvicorn.Config(
        app,
        host=host.strip("[]"),
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
        http=type("SlowClientGuard", (SlowClientGuard,), {"header_timeout": limits.header_timeout}),
        limit_concurrency=limits.max_connections,
    )
    await _stoppable(config, app.state.stopping, owns_signals=True).serve()


def _served(projects: ProjectRegistry) -> str:
    if projects.pinned is not None:
        return str(projects.pinned)
    also = f"; {projects.fallback} to clients that declare none" if projects.fallback else ""
    return f"each client's project (its editor's first root{also})"


def check_port_free(host: str, port: int) -> None:
    """Refuse, in one line, a port something else already listens on (before any banner is printed)."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigError(
            f"--host {host}: cannot be resolved ({exc.strerror}); give an address of this machine."
        ) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(
                f"port {port} on {host} cannot be used ({exc.strerror}); pass --port with a free one, or stop "
                "what listens there."
            ) from None


def connection_help(transport: Transport, host: str, port: int, token: bool, projects: ProjectRegistry) -> str:
    url = f"http://{host}:{port}{PATHS[transport]}"
    auth = ', "headers": {"Authorization": "Bearer <token>"}' if token else ""
    kind = "http" if transport == "streamable-http" else "sse"
    return "\n".join(
        [
            f"loomkin-mcp serves {_served(projects)} at {url} ({transport}). Connect an editor:",
            f'  Cursor   (.cursor/mcp.json)   {{"mcpServers": {{"loomkin": {{"url": "{url}"{auth}}}}}}}',
            f'  VS Code  (.vscode/mcp.json)   {{"servers": {{"loomkin": {{"type": "{kind}", "url": "{url}"{auth}}}}}}}',
            f"  Claude Code                   claude mcp add --transport {kind} loomkin {url}",
            f'  Windsurf (mcp_config.json)    {{"mcpServers": {{"loomkin": {{"serverUrl": "{url}"{auth}}}}}}}',
            f'  Zed      (settings.json)      {{"context_servers": {{"loomkin": {{"url": "{url}"{auth}}}}}}}',
            "  Claude Desktop launches servers itself: use `loomkin-mcp editor-config claude-desktop` (stdio).",
            f"Status page: http://{host}:{port}/ (as JSON: {STATUS_PATH}; {HEALTH_PATH} for process managers). "
            "Ctrl-C stops it.",
        ]
    )
