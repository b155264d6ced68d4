"""Serving over stdio, reading and writing on the event loop.

The SDK reads stdin in a worker thread, and a blocked read cannot be cancelled: on SIGTERM
the server would wait for the editor to write or close the pipe before it could unwind and
stop the commands it started. Waiting for readability on the event loop instead lets a
cancellation through at once. It writes each message and flushes it in worker threads too:
two thread hops an answer (~0.2 ms), where a non-blocking write waits only for an editor that
is slow to read.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import anyio

from .._limits import MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    from ..server import LoomkinServer

logger = logging.getLogger("loomkin_mcp.stdio")

_CHUNK = 1 << 16
# What is passed on of a message over MAX_MESSAGE_BYTES: not JSON, so the SDK reports a parse error.
_DROPPED_HEAD = 200


async def serve_stdio(server: LoomkinServer) -> None:
    """Serve until stdin closes or a SIGTERM / SIGHUP arrives.

    On a signal, in-flight tool calls are cancelled so their cleanup runs (a running shell
    command's process group is killed) instead of the process dying with children left behind.
    """
    async with anyio.create_task_group() as group:

        async def stop_on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
                async for signum in signals:
                    logger.info("received %s, shutting down", signal.Signals(signum).name)
                    group.cancel_scope.cancel()
                    return

        group.start_soon(stop_on_signal)
        await _run(server)
        group.cancel_scope.cancel()


async def _run(server: LoomkinServer) -> None:
    from mcp.server.stdio import stdio_server

    stdin = cancellable_stdin()
    lowlevel = server._lowlevel_server
    options = lowlevel.create_initialization_options()
    # The SDK types stdin and stdout as AsyncFiles; it only iterates one line by line and writes to the other.
    with _protocol_stdout() as stdout:
        if stdout is not None and stdin is not None:
            # Read-only upstream tools, once called, are relayed past both SDK sessions (upstream._relay).
            server.relay_answers_to(stdout.write)
            stdin = _unless_relayed(stdin, server)
        async with (
            server.shared_resources(),
            stdio_server(stdin=cast(Any, stdin), stdout=cast(Any, stdout)) as (read_stream, write_stream),
        ):
            await lowlevel.run(read_stream, write_stream, options)


@contextmanager
def _protocol_stdout() -> Iterator[_Stdout | None]:
    """The protocol's output: fd 1, moved to a descriptor of its own and made non-blocking, while fd 1 points
    at stderr (a library's stray print, a child handed our stdout, misses the wire). None where stdout is not a
    pipe or socket (a terminal, a file): then the SDK writes it as it does."""
    try:
        mode = os.fstat(1).st_mode
        pollable = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
    except OSError:
        pollable = False
    if not pollable:
        yield None
        return
    private = fcntl.fcntl(1, fcntl.F_DUPFD_CLOEXEC, 3)
    os.dup2(2, 1)
    os.set_blocking(private, False)
    try:
        yield _Stdout(private)
    finally:
        os.set_blocking(private, True)
        os.dup2(private, 1)
        os.close(private)


class _Stdout:
    """Messages written to a non-blocking descriptor from the event loop, whole and in order (the SDK's and the
    relay's, one at a time); nothing is buffered, so `flush` has nothing to do."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._writing = anyio.Lock()

    async def write(self, text: str) -> None:
        data = memoryview(text.encode("utf-8"))
        async with self._writing:
            while data:
                try:
                    data = data[os.write(self._fd, data) :]
                except BlockingIOError:
                    await anyio.wait_writable(self._fd)

    async def flush(self) -> None:
        return None


async def _unless_relayed(lines: AsyncIterator[str], server: LoomkinServer) -> AsyncIterator[str]:
    """The lines the SDK reads: all but those the relay takes."""
    async for line in lines:
        relay = server.relay
        if relay is None or not relay.take(line):
            yield line


def cancellable_stdin() -> AsyncIterator[str] | None:
    """Lines of stdin as text, or None where stdin cannot be polled (a regular file, /dev/null)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
        pollable = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))
    except (AttributeError, OSError, ValueError):
        return None
    return _lines(fd) if pollable else None


async def _lines(fd: int) -> AsyncIterator[str]:
    # Parts of the line being received, joined once its newline arrives: a 10 MB message
    # in 64 KB chunks is not re-scanned on every chunk.
    parts: list[bytes] = []
    size = 0
    dropping = False
    while True:
        await anyio.wait_readable(fd)
        # Readable means a read returns at once: data, or b"" at end of input.
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            if parts and not dropping:
                yield b"".join(parts).decode("utf-8", errors="replace")
            return
        if b"\n" not in chunk:
            if not dropping:
                parts.append(chunk)
                size += len(chunk)
                if size > MAX_MESSAGE_BYTES:
                    # Memory must not follow a runaway client: keep nothing more of this message.
                    logger.warning("a message of over %d MB on stdin was dropped; send less at once.", size >> 20)
                    head = b"".join(parts)[:_DROPPED_HEAD]
                    parts, dropping = [head], True
            continue
        first, *middle, rest = chunk.split(b"\n")
        for line in (b"".join([*parts, first]) if not dropping else parts[0], *middle):
            yield line.decode("utf-8", errors="replace") + "\n"
        parts = [rest] if rest else []
        size = len(rest)
        dropping = False
