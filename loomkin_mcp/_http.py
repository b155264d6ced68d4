"""loomkin-mcp over HTTP: streamable HTTP at /mcp, or legacy SSE at /sse, for any number of clients.

One process serves them all: one workspace, one set of language servers, one repo index, one
upstream pool (entered once by the app's lifespan); each client has its own MCP session.
Security as the MCP spec asks: loopback by default, Host and Origin validated (foreign origins
get 403), a bearer token required to bind anything but loopback (401 without it, compared in
constant time), request bodies capped.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

from ._errors import ConfigError
from ._limits import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from ._server import LoomkinServer

logger = logging.getLogger("loomkin_mcp.http")

Transport = Literal["streamable-http", "sse"]
PATHS = {"streamable-http": "/mcp", "sse": "/sse"}


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


def build_app(server: LoomkinServer, transport: Transport, host: str, port: int, token: str | None) -> Starlette:
    from mcp.server.transport_security import TransportSecuritySettings

    names = ["127.0.0.1", "localhost", "[::1]"] if is_loopback(host) else [host]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:{port}" for name in names] + [f"{name}:*" for name in names],
        allowed_origins=[f"{scheme}://{name}:{port}" for name in names for scheme in ("http", "https")],
    )
    if transport == "sse":
        app = server.sse_app(transport_security=security, host=host, max_request_body_size=MAX_MESSAGE_BYTES)
    else:
        app = server.streamable_http_app(
            transport_security=security, host=host, max_request_body_size=MAX_MESSAGE_BYTES
        )
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


async def serve(server: LoomkinServer, transport: Transport, host: str, port: int, token: str | None) -> None:
    """Serve until SIGINT / SIGTERM; uvicorn then stops taking requests and the lifespan cleans up."""
    import uvicorn

    check_binding(host, token)
    config = uvicorn.Config(
        build_app(server, transport, host, port, token),
        host=host.strip("[]"),
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    await uvicorn.Server(config).serve()


def connection_help(transport: Transport, host: str, port: int, token: bool) -> str:
    url = f"http://{host}:{port}{PATHS[transport]}"
    auth = ', "headers": {"Authorization": "Bearer <token>"}' if token else ""
    kind = "http" if transport == "streamable-http" else "sse"
    return "\n".join(
        [
            f"loomkin-mcp serves this project at {url} ({transport}). Connect an editor:",
            f'  Cursor   (.cursor/mcp.json)   {{"mcpServers": {{"loomkin": {{"url": "{url}"{auth}}}}}}}',
            f'  VS Code  (.vscode/mcp.json)   {{"servers": {{"loomkin": {{"type": "{kind}", "url": "{url}"{auth}}}}}}}',
            f"  Claude Code                   claude mcp add --transport {kind} loomkin {url}",
            f'  Windsurf (mcp_config.json)    {{"mcpServers": {{"loomkin": {{"serverUrl": "{url}"{auth}}}}}}}',
            f'  Zed      (settings.json)      {{"context_servers": {{"loomkin": {{"url": "{url}"{auth}}}}}}}',
            "  Claude Desktop launches servers itself: use `loomkin-mcp editor-config claude-desktop` (stdio).",
            "Ctrl-C stops it.",
        ]
    )
