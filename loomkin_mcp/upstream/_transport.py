"""Transports to upstream MCP servers: a child process over stdio, or a URL (SSE or streamable HTTP).

The stdio transport is ours rather than the SDK's `stdio_client` because we need what that
hides: the exit code, the last lines of stderr, the process group to kill, and a child that
dies with us.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

from loomkin_lsp_client import die_with_parent, find_executable

from ..config import McpServerEntry
from ._link import RawLink

_STDERR_TAIL_LINES = 20
_STOP_GRACE_SECONDS = 2.0
# A JSON-RPC line longer than this is refused rather than buffered without end.
_MAX_LINE_BYTES = 64 * 1024 * 1024

Streams = tuple[Any, Any]


@dataclass
class ProcessInfo:
    """What a stdio upstream's process left behind, for error messages and status."""

    pid: int | None = None
    returncode: int | None = None
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_TAIL_LINES))
    exited: anyio.Event = field(default_factory=anyio.Event)
    hung: bool = False
    """It stopped answering: stopping it skips the grace a healthy process gets."""

    def describe_exit(self) -> str:
        code = self.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        tail = " | ".join(list(self.stderr_tail)[-3:])
        return how + (f"; its last stderr: {tail[:400]}" if tail else "")


# What an upstream gets of the server's own environment: enough to find its programs, never its secrets.
_UPSTREAM_PASSED = ("PATH", "HOME", "LANG")


def upstream_environment(entry: McpServerEntry) -> dict[str, str]:
    """PATH, HOME and LANG, plus what the entry's `env` names (the person's or a trusted project's choice)."""
    return {name: os.environ[name] for name in _UPSTREAM_PASSED if name in os.environ} | dict(entry.env)


@asynccontextmanager
async def open_stdio(
    entry: McpServerEntry, root: Path, info: ProcessInfo, link: RawLink | None = None
) -> AsyncIterator[Streams]:
    """Spawn `entry.command` and speak newline-delimited JSON-RPC over its stdin and stdout; `link` relays raw
    lines beside the session's."""
    assert entry.command is not None
    cwd = Path(entry.cwd) if entry.cwd else root
    if not cwd.is_absolute():
        cwd = root / cwd
    process = await asyncio.create_subprocess_exec(
        find_executable(entry.command) or entry.command,
        *entry.args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(cwd),
        env=upstream_environment(entry),
        start_new_session=True,
        preexec_fn=die_with_parent,
        limit=_MAX_LINE_BYTES,
    )
    info.pid = process.pid
    read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_stdout() -> None:
        assert process.stdout is not None
        async with read_writer:
            while line := await process.stdout.readline():
                if not line.strip() or (link is not None and link.claim(line)):
                    continue
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except Exception as exc:  # noqa: BLE001 - a garbled line is reported to the session, not fatal
                    # A reply that cannot be read (nested too deep, not JSON-RPC) still answers its request at
                    # once, with an error naming the upstream, instead of leaving the call to time out.
                    unreadable = _unreadable_reply(entry.name, line, exc)
                    await read_writer.send(exc if unreadable is None else SessionMessage(unreadable))
                    continue
                await read_writer.send(SessionMessage(message))
        if link is not None:  # the calls relayed in flight fail now, as the session's own do
            link.close()

    async def write_stdin() -> None:
        assert process.stdin is not None
        async with write_reader:
            async for session_message in write_reader:
                data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                process.stdin.write(data.encode() + b"\n")
                await process.stdin.drain()

    stderr_read = anyio.Event()

    async def read_stderr() -> None:
        assert process.stderr is not None
        try:
            while line := await process.stderr.readline():
                if text := line.decode("utf-8", errors="replace").rstrip():
                    info.stderr_tail.append(text)
        finally:
            stderr_read.set()

    async def wait_exit() -> None:
        info.returncode = await process.wait()
        info.exited.set()

    async with anyio.create_task_group() as group:
        group.start_soon(wait_exit)
        group.start_soon(read_stderr)
        group.start_soon(read_stdout)
        group.start_soon(_quietly, write_stdin)
        if link is not None and process.stdin is not None:
            link.attach(process.stdin)
        try:
            yield read_stream, write_stream
        finally:
            if link is not None:
                link.close()
            with anyio.CancelScope(shield=True):
                await _stop(process, info)
                # stdout's end can reach the session before the exit is recorded: wait for the exit code and
                # stderr's last lines, so the failure is described the same way every time.
                with anyio.move_on_after(_STOP_GRACE_SECONDS):
                    await _exited(process, info)
                    await stderr_read.wait()
            group.cancel_scope.cancel()


# A reply's id, near either end of the line (JSON-RPC puts it before or after the result).
_REPLY_ID = re.compile(rb'"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.){0,200}")')
_ID_SEARCH_BYTES = 512


def _unreadable_reply(name: str, line: bytes, exc: Exception) -> types.JSONRPCError | None:
    """An error answering the request whose reply `line` was, when its id can be found; else None."""
    for part in (line[:_ID_SEARCH_BYTES], line[-_ID_SEARCH_BYTES:]):
        found = _REPLY_ID.search(part)
        if found is not None and b'"method"' not in line[:_ID_SEARCH_BYTES]:
            request_id = json.loads(found.group(1))
            lines = str(exc).splitlines()
            why = lines[1].split(" [type=")[0].strip() if len(lines) > 1 else type(exc).__name__
            message = (
                f"{name} sent a reply that cannot be read ({why[:200]}); the call failed, try it again or ask less"
            )
            return types.JSONRPCError(
                jsonrpc="2.0", id=request_id, error=types.ErrorData(code=types.INTERNAL_ERROR, message=message)
            )
    return None


async def _quietly(writer: Any) -> None:
    # The child closing its stdin (it exited) surfaces as a broken pipe: the reader reports the end.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError, anyio.ClosedResourceError):
        await writer()


async def _stop(process: asyncio.subprocess.Process, info: ProcessInfo) -> None:
    """Close stdin, then SIGTERM and SIGKILL the process group: nothing it started survives."""
    if info.hung:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return
    if process.returncode is None and process.stdin is not None:
        with contextlib.suppress(Exception):
            process.stdin.close()
        with anyio.move_on_after(_STOP_GRACE_SECONDS / 2):
            await _exited(process, info)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        if sig == signal.SIGTERM and process.returncode is None:
            with anyio.move_on_after(_STOP_GRACE_SECONDS):
                await _exited(process, info)


async def _exited(process: asyncio.subprocess.Process, info: ProcessInfo) -> None:
    """Until the process has exited, its code recorded. Awaits the process itself: when the server is shutting
    down, the task that records the exit has been cancelled with the rest."""
    info.returncode = await process.wait()
    info.exited.set()


@asynccontextmanager
async def open_url(entry: McpServerEntry, transport: str) -> AsyncIterator[Streams]:
    """`transport` is "sse" or "streamable-http"."""
    assert entry.url is not None
    if transport == "sse":
        from mcp.client.sse import sse_client

        async with sse_client(entry.url, headers=dict(entry.headers)) as streams:
            yield streams[0], streams[1]
        return
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=dict(entry.headers), timeout=httpx2.Timeout(30.0, read=300.0)) as http,
        streamable_http_client(entry.url, http_client=http) as streams,
    ):
        yield streams[0], streams[1]


def url_transports(url: str) -> list[str]:
    """Which transports to try for a URL, in order: `/sse` is SSE; else streamable HTTP, then SSE."""
    path = url.split("?", 1)[0].rstrip("/")
    return ["sse"] if path.endswith("/sse") else ["streamable-http", "sse"]
