"""Reading files a repository may have planted, without following it anywhere.

Loomkin's own files (LOOMKIN.md, `.loomkin.toml`, ignore files, `.loomkin/`) sit in a project
that may have been written by an attacker: a symlink to `/proc/self/environ`, a FIFO that
blocks any `open`, `/dev/zero`, a 200 MB file. These helpers read only regular files inside the
root, opened without blocking and without following a last symlink, and never more than a cap.
The config loader and the workspace both use them, so the rule lives here once.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path


class OwnFileRefused(Exception):
    """The file exists but is not something loomkin reads (its message says why, in a clause)."""


@dataclass(frozen=True)
class OwnFile:
    path: Path
    """The real path the content came from (inside the root)."""
    data: bytes
    truncated: bool
    """The file held more than the cap; `data` is its first `limit` bytes."""
    identity: tuple[int, int]
    """(st_dev, st_ino): the same file under any other name or hard link."""


def inside(path: Path | str, root: Path | str) -> bool:
    """Whether `path` (already real) is `root` or below it, by components (`/proj-evil` is not in `/proj`)."""
    return Path(path).is_relative_to(root)


def read_own_file(path: Path, root: Path, limit: int) -> OwnFile | None:
    """The first `limit` bytes of `path`, when it is a regular file whose real location is inside `root`.

    None when nothing is there. Raises OwnFileRefused for a link leading out of the root, a
    directory, FIFO, socket or device, or a file that cannot be opened.
    """
    if not os.path.lexists(path):
        return None
    real = Path(os.path.realpath(path))
    if not inside(real, root):
        raise OwnFileRefused(f"it leads through a symlink to {real}, outside the project")
    try:
        # O_NONBLOCK: a FIFO opens at once instead of waiting for a writer; it is refused just below.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise OwnFileRefused(f"it cannot be opened ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OwnFileRefused(f"it is {describe_kind(info.st_mode)}, not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    return OwnFile(real, data[:limit], len(data) > limit, (info.st_dev, info.st_ino))


def own_directory(path: Path, root: Path) -> Path:
    """`path` as a real directory inside `root`, created when missing; never through a symlink.

    Raises OwnFileRefused when something else (a symlink, a file) stands at that name.
    """
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        raise OwnFileRefused(f"it cannot be created ({exc.strerror})") from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise OwnFileRefused(f"it is {describe_kind(info.st_mode)}, not a directory")
    if not inside(os.path.realpath(path), root):
        raise OwnFileRefused("it leads outside the project")
    return path


def ensure_no_link(path: Path) -> None:
    """Refuse a planted symlink, FIFO or device where loomkin will create or open a state file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise OwnFileRefused(f"{path.name} is {describe_kind(info.st_mode)}, not a regular file")


def describe_kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a regular file" if stat.S_ISREG(mode) else "a special file"
