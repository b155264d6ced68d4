"""Serving the editor's workspace when loomkin-mcp is started in / or ~ without `--root`.

Some editors (Claude Desktop) start servers in / or the home directory. When the editor declares
the `roots` capability, it says which project is open: loomkin-mcp answers `initialize` itself,
asks `roots/list` once `notifications/initialized` arrives, and then replaces itself (`exec`, same
pid, same pipes) with `loomkin-mcp --stdio --root <first root>`, handing over what the editor has
sent so far. The new process replays those messages and swallows its own answer to the replayed
`initialize`, so the editor sees one session. An editor that declares no roots gets the refusal
it always got, as the answer to its `initialize`.
"""

from __future__ import annotations

import json
import logging
import os
import select
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ._errors import ConfigError, one_line
from ._limits import MAX_MESSAGE_BYTES
from ._version import __version__

logger = logging.getLogger("loomkin_mcp.roots")

REPLAY_ENV = "LOOMKIN_MCP_REPLAY"
ROOTS_REQUEST_ID = "loomkin-mcp-roots"
# How long the editor may take to answer roots/list before loomkin-mcp gives up on it.
ROOTS_TIMEOUT_SECONDS = 30.0
# The capabilities LoomkinServer declares (a test checks they are the same as a rooted start's).
CAPABILITIES = {
    "logging": {},
    "prompts": {"listChanged": True},
    "resources": {"listChanged": True, "subscribe": True},
    "tools": {"listChanged": True},
}


def unsafe_default_root(root: Path) -> bool:
    return root in (Path("/"), Path.home().resolve())


def serve_editors_root(args: list[str]) -> None:
    """Answer initialize, learn the editor's roots, then exec a rooted loomkin-mcp (never returns).

    Raises ConfigError (after answering the editor with it) when there is no usable root.
    """
    reader = _Lines(sys.stdin.fileno())
    initialize = reader.next_message(None)
    if initialize is None or initialize.get("method") != "initialize":
        raise ConfigError(_refusal("the first message was not initialize"))
    params = initialize.get("params") or {}
    if "roots" not in (params.get("capabilities") or {}):
        _reply_error(initialize, _refusal("your editor declares no roots"))
        raise ConfigError(_refusal("the editor declares no roots"))
    _write(_initialize_result(initialize, params))
    held: list[str] = []
    while True:
        line, message = reader.next_line(None)
        if message is None:
            raise ConfigError("the editor closed the connection before it was initialized.")
        if message.get("method") == "notifications/initialized":
            break
        held.append(line)
    _write({"jsonrpc": "2.0", "id": ROOTS_REQUEST_ID, "method": "roots/list"})
    deadline = time.monotonic() + ROOTS_TIMEOUT_SECONDS
    while True:
        line, message = reader.next_line(deadline)
        if message is None:
            raise ConfigError(_refusal("the editor did not answer roots/list"))
        if message.get("id") == ROOTS_REQUEST_ID and "method" not in message:
            break
        held.append(line)
    roots = _directories(message.get("result", {}).get("roots", []))
    if not roots:
        raise ConfigError(_refusal("none of the editor's roots is a project directory"))
    served = roots[0]
    note = f"serving {served}, the editor's first root" + (f" of {len(roots)}" if len(roots) > 1 else "")
    replay = {"lines": [json.dumps(initialize), *held], "rest": reader.rest(), "swallow": initialize.get("id"),
              "note": note}  # fmt: skip
    os.environ[REPLAY_ENV] = json.dumps(replay)
    sys.stdout.flush()
    # -P: the current directory (/ or ~) must not be where `loomkin_mcp` is imported from.
    os.execv(sys.executable, [sys.executable, "-P", "-m", "loomkin_mcp", *args, "--root", str(served)])


def take_replay() -> dict[str, Any] | None:
    """What the rootless start handed over (then removed from the environment, so no child sees it)."""
    raw = os.environ.pop(REPLAY_ENV, None)
    return json.loads(raw) if raw else None


async def replayed_then(replay: dict[str, Any], lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The handed-over messages, the bytes read past them, then stdin's own lines."""
    for line in replay["lines"]:
        yield line.rstrip("\n") + "\n"
    rest: str = replay["rest"]
    first = True
    async for line in lines:
        if first and rest:
            line, first = rest + line, False
        yield line
    if first and rest:
        yield rest


def _refusal(why: str) -> str:
    return (
        f"loomkin-mcp was started in {Path.cwd()} without --root and {why}; pass --root /path/to/project "
        "in the editor's config."
    )


def _initialize_result(request: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

    asked = params.get("protocolVersion")
    version = asked if asked in HANDSHAKE_PROTOCOL_VERSIONS else HANDSHAKE_PROTOCOL_VERSIONS[-1]
    instructions = (
        "loomkin-mcp serves Loomkin's tools for the project open in the editor (its first root). Paths are "
        "relative to that root. Read loomkin://rules for the enforced rules."
    )
    result = {
        "protocolVersion": version,
        "capabilities": CAPABILITIES,
        "serverInfo": {"name": "loomkin", "title": "Loomkin", "version": __version__},
        "instructions": instructions,
    }
    return {"jsonrpc": "2.0", "id": request.get("id"), "result": result}


def _reply_error(request: dict[str, Any], message: str) -> None:
    _write({"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": -32600, "message": message}})


def _write(message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(sys.stdout.fileno(), data) :]


def _directories(roots: list[Any]) -> list[Path]:
    from .workspace import refused_root

    found = []
    for root in roots:
        uri = str(root.get("uri", "")) if isinstance(root, dict) else ""
        parts = urlsplit(uri)
        if parts.scheme != "file":
            continue
        path = Path(unquote(parts.path))
        why = refused_root(path)
        if why is None:
            found.append(path.resolve())
        else:
            logger.warning("the editor's root %s is not served: %s.", one_line(str(path)), why)
    return found


class _Lines:
    """Whole lines of a file descriptor, read without going past what is asked for more than one chunk."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""

    def next_message(self, deadline: float | None) -> dict[str, Any] | None:
        return self.next_line(deadline)[1]

    def next_line(self, deadline: float | None) -> tuple[str, dict[str, Any] | None]:
        """The next JSON object line and its parse; ("", None) at end of input or past the deadline."""
        while True:
            if b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode("utf-8", errors="replace")
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict):
                    return line, message
                continue
            if len(self._buffer) > MAX_MESSAGE_BYTES:
                return "", None
            wait = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not select.select([self._fd], [], [], wait)[0]:
                return "", None
            chunk = os.read(self._fd, 1 << 16)
            if not chunk:
                return "", None
            self._buffer += chunk

    def rest(self) -> str:
        return self._buffer.decode("utf-8", errors="replace")


class WithoutAnswerTo:
    """A write stream that drops the response to one request id (the replayed `initialize`), once."""

    def __init__(self, stream: Any, request_id: Any) -> None:
        self._stream = stream
        self._request_id = request_id
        self._dropped = False

    async def send(self, item: Any) -> None:
        message = getattr(item, "message", None)
        if not self._dropped and getattr(message, "id", None) == self._request_id and not hasattr(message, "method"):
            self._dropped = True
            return
        await self._stream.send(item)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> WithoutAnswerTo:
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._stream.__aexit__(*exc)
