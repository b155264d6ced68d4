"""Lines from stdin that a cancellation can interrupt.

The SDK reads stdin in a worker thread, and a blocked read cannot be cancelled: on SIGTERM
the server would wait for the editor to write or close the pipe before it could unwind and
stop the commands it started. Waiting for readability on the event loop instead lets a
cancellation through at once.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import AsyncIterator

import anyio

_CHUNK = 1 << 16


def cancellable_stdin() -> AsyncIterator[str] | None:
    """Lines of stdin as text, or None where stdin cannot be polled (a regular file)."""
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
    except (AttributeError, OSError, ValueError):
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
        return None
    return _lines(fd)


async def _lines(fd: int) -> AsyncIterator[str]:
    # Parts of the line being received, joined once its newline arrives: a 10 MB message
    # in 64 KB chunks is not re-scanned on every chunk.
    parts: list[bytes] = []
    while True:
        await anyio.wait_readable(fd)
        # Readable means a read returns at once: data, or b"" at end of input.
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            if parts:
                yield b"".join(parts).decode("utf-8", errors="replace")
            return
        if b"\n" not in chunk:
            parts.append(chunk)
            continue
        first, *middle, rest = chunk.split(b"\n")
        for line in (b"".join([*parts, first]), *middle):
            yield line.decode("utf-8", errors="replace") + "\n"
        parts = [rest] if rest else []
