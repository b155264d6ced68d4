"""Child processes that never outlive us."""

from __future__ import annotations

import ctypes
import signal
import sys

# Looked up once here: between fork and exec the child must not load libraries or take locks.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """`preexec_fn` for Linux: the child gets SIGKILL when we die, even by `kill -9`."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
