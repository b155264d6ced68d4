"""Giving the memory a bulk build freed back to the system.

Building a map of thousands of files allocates and drops tens of megabytes of short-lived objects
(parse results, edge lists); glibc's allocator keeps what was freed for reuse, so a server that
mapped a large tree once would hold it for its whole life. `malloc_trim` returns it.
"""

from __future__ import annotations

import ctypes
import sys
from functools import cache


@cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).malloc_trim  # the C library the interpreter already runs on
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_freed_memory() -> None:
    """Return the heap's free pages to the system, where the C library can (glibc); a no-op elsewhere."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
