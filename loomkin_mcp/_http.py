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
import hmac
import ipaddress
import json
import logging
import math
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from uvicorn.protocols.http.h11_impl import H11Protocol

from ._errors import ConfigError
from ._limits import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ._server import LoomkinServer

logger = logging.getLogger("loomkin_mcp.http")

Transport = Literal["streamable-http", "sse"]
PATHS = {"streamable-http": "/mcp", "sse": "/sse"}


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


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host} would expose the project beyond this machine without a token; "
            "set LOOMKIN_TOKEN or pass --token-file, or bind 127.0.0.1."
        )


def build_app(
    server: LoomkinServer, transport: Transport, host: str, port: int, token: str | None, limits: Limits = Limits()
) -> Starlette:
    from mcp.server.transport_security import TransportSecuritySettings

    names = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else _own_names(host)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:{port}" for name in names] + [f"{name}:*" for name in names],
        allowed_origins=[f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")],
    )
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host, max_request_body_size=MAX_MESSAGE_BYTES)
    else:
        app = server.streamable_http_app(
            transport_security=security, host=host, max_request_body_size=MAX_MESSAGE_BYTES,
            session_idle_timeout=limits.session_idle_timeout, max_sessions=None,
        )  # fmt: skip
        _evict_idlest_at(server._lowlevel_server._session_manager, limits.max_sessions)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        # Shared by every client, entered once for the daemon's life.
        async with server.shared_resources(), inner(application) as state:
            yield state

    app.router.lifespan_context = lifespan
    if token:
        app.add_middleware(BearerToken, token=token)
    return app


class BearerToken:
    """401 unless `Authorization: Bearer <token>` (compared in constant time)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, self._expected):
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


def _evict_idlest_at(manager: Any, limit: int) -> None:
    """At `limit` live sessions, a new one closes the session idle longest instead of being refused.

    Only when every session has a request in flight is the newcomer refused (503). This reaches into
    the SDK's session manager (`_admit_session`, `_server_instances`): it has a cap, but refuses at it.
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
        return admit(requestor)

    manager._admit_session = admit_evicting


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
    config = uvicorn.Config(
        build_app(server, transport, host, port, token, limits),
        host=host.strip("[]"),
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
        http=type("SlowClientGuard", (SlowClientGuard,), {"header_timeout": limits.header_timeout}),
        limit_concurrency=limits.max_connections,
    )
    await uvicorn.Server(config).serve()


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


def connection_help(transport: Transport, host: str, port: int, token: bool, root: Path) -> str:
    url = f"http://{host}:{port}{PATHS[transport]}"
    auth = ', "headers": {"Authorization": "Bearer <token>"}' if token else ""
    kind = "http" if transport == "streamable-http" else "sse"
    return "\n".join(
        [
            f"loomkin-mcp serves {root} at {url} ({transport}). Connect an editor:",
            f'  Cursor   (.cursor/mcp.json)   {{"mcpServers": {{"loomkin": {{"url": "{url}"{auth}}}}}}}',
            f'  VS Code  (.vscode/mcp.json)   {{"servers": {{"loomkin": {{"type": "{kind}", "url": "{url}"{auth}}}}}}}',
            f"  Claude Code                   claude mcp add --transport {kind} loomkin {url}",
            f'  Windsurf (mcp_config.json)    {{"mcpServers": {{"loomkin": {{"serverUrl": "{url}"{auth}}}}}}}',
            f'  Zed      (settings.json)      {{"context_servers": {{"loomkin": {{"url": "{url}"{auth}}}}}}}',
            "  Claude Desktop launches servers itself: use `loomkin-mcp editor-config claude-desktop` (stdio).",
            "Ctrl-C stops it.",
        ]
    )
