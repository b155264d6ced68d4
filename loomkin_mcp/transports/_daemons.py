"""Which HTTP daemon serves a project, so `loomkin-mcp status` shows the live one: each daemon leaves a record
in the person's own state directory (never in the project, whose files anyone may have written) for as long
as it runs, keyed by its `--root`, or as serving any project its clients open."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._fs import atomic_write


@dataclass(frozen=True)
class Daemon:
    pid: int
    url: str
    """Where it answers: `http://127.0.0.1:4200` (no path)."""


def _record(root: Path | None) -> Path:
    from ..config import xdg_home

    name = f"{hashlib.sha256(str(root).encode()).hexdigest()[:24]}.json" if root is not None else "any-project.json"
    return xdg_home("XDG_STATE_HOME", ".local/state") / "loomkin-mcp" / "daemons" / name


@contextlib.contextmanager
def announced(root: Path | None, url: str) -> Iterator[None]:
    """The record of this process serving `root` (None: any project its clients open) at `url`, while the block
    runs (a record left by a daemon that was killed names a pid that no longer runs, and is ignored)."""
    record = _record(root)
    record.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(record, json.dumps({"pid": os.getpid(), "url": url, "root": str(root) if root else None}).encode())
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(record.read_text())["pid"] == os.getpid():
                record.unlink()


def running(root: Path) -> Daemon | None:
    """The daemon serving `root` now (by `--root`, else one serving any project), if its record names a live
    process."""
    for key in (root, None):
        try:
            data = json.loads(_record(key).read_text())
            daemon = Daemon(int(data["pid"]), str(data["url"]))
            if data["root"] != (str(key) if key is not None else None):
                continue
            os.kill(daemon.pid, 0)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return daemon
    return None
