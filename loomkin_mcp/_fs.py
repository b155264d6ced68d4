"""Reading files a repository may have planted, without following it anywhere.

Loomkin's own files (LOOMKIN.md, `.loomkin.toml`, ignore files, `.loomkin/`) sit in a project
that may have been written by an attacker: a symlink to `/proc/self/environ`, a FIFO that
blocks any `open`, `/dev/zero`, a 200 MB file. These helpers read only regular files inside the
root, opened without blocking and without following a last symlink, and never more than a cap.
The config loader and the workspace both use them, so the rule lives here once.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class OwnFileRefused(Exception):
    """The file exists but is not something loomkin reads (its message says why, in a clause)."""


@dataclass(frozen=True)
class OwnFile:
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
    if not inside(real, root) or real == Path(root):
        raise OwnFileRefused(f"it leads through a symlink to {real}, outside the project")
    try:
        # Walked from the root's descriptor: a directory on the way swapped for a link now fails the open.
        # O_NONBLOCK (added there): a FIFO opens at once instead of waiting for a writer; refused below.
        root_fd = open_root(Path(root))
        try:
            fd = open_file_beneath(root_fd, real.relative_to(root).parts, os.O_RDONLY)
        finally:
            os.close(root_fd)
    except FileNotFoundError:
        return None
    except SwappedPath:
        raise OwnFileRefused("a directory on its way changed into a symlink while it was being opened") from None
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
    return OwnFile(data[:limit], len(data) > limit, (info.st_dev, info.st_ino))


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


# -- writes that readers never see half done ------------------------------------------------------


def atomic_write(path: Path, data: bytes, mode: int | None = None) -> None:
    """`atomic_write_at` for a file of loomkin's own (its caches, the trust store), by the directory's name."""
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        atomic_write_at(parent, path.name, data, mode)
    finally:
        os.close(parent)


def atomic_write_at(parent: int, name: str, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `name` in the directory `parent` so readers see the old or the new content, never a mix.

    A temp file in the same directory is written, fsynced, given `mode` (default: the old file's), and
    renamed over the target, all relative to `parent` (a link swapped in for the directory cannot
    redirect it); the directory is fsynced so the rename survives a crash. The temp file stays locked
    (flock) until it is renamed, so the next write to the file removes what a killed writer left and
    never what a live one, in any process or container, is still writing.
    """
    if mode is None:
        try:
            info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            mode = stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else 0o666 & ~_UMASK
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
    _remove_stale_temp_files(parent, name)
    temp_name, fd = _locked_temp_file(parent, name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fchmod(fd, mode)
            os.fsync(fd)
            os.rename(temp_name, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            try:
                os.unlink(temp_name, dir_fd=parent)
            except FileNotFoundError:
                pass
            raise
    finally:
        os.close(fd)  # the lock goes with it, only once the name is the target's
    os.fsync(parent)


_TEMP_SUFFIX = ".loomkin-tmp"


def _read_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


# Read once: os.umask can only be read by setting it, which would race with other threads.
_UMASK = _read_umask()


def _locked_temp_file(parent: int, name: str) -> tuple[str, int]:
    """A new temp file beside `name`, created and locked: its name and descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    while True:
        temp_name = f".{name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}"
        fd = os.open(temp_name, flags, 0o600, dir_fd=parent)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink:
            return temp_name, fd
        # Between our create and our lock, another writer's cleanup took it for a dead writer's.
        os.close(fd)


def _remove_stale_temp_files(parent: int, name: str) -> None:
    """Temp files of writes to `name` that nobody holds locked: their writer died before its rename.

    The lock is the kernel's, released when its holder exits however it exits: no pid to be reused,
    nor read across pid namespaces.
    """
    prefix = f".{name}."
    for entry in os.listdir(parent):
        if not (entry.startswith(prefix) and entry.endswith(_TEMP_SUFFIX)):
            continue
        try:
            fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        except OSError:
            continue  # gone already, or a link or FIFO someone else planted: not ours to remove
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its writer is at work
            held, named = os.fstat(fd), os.stat(entry, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISREG(held.st_mode) and (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino):
                os.unlink(entry, dir_fd=parent)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)


def proc_stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, …), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            return stat_file.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


# -- the project's files, by descriptor ------------------------------------------------------------
#
# The path guard decides *whether* a path may be used; these make sure the file used is the one it
# decided on. A name is resolved once and then opened by name again, so another process (or the model,
# through git) swapping a parent directory for a symlink in between would redirect the open. Here every
# component below the root is opened with O_NOFOLLOW relative to its parent's descriptor, and a write's
# temp file and rename happen relative to the verified parent: a swapped-in link fails the call instead.

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class SwappedPath(OSError):
    """A component of the path stopped being a plain directory between the check and the use."""


def open_root(root: Path) -> int:
    """A descriptor of the project root, kept for the life of the workspace."""
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def open_directory_beneath(root_fd: int, parts: tuple[str, ...], create: bool = False) -> int:
    """A descriptor of the directory `parts` below the root, walked without following any link.

    `create` makes missing directories (mkdirat). Raises FileNotFoundError when one is missing,
    NotADirectoryError when one is a file, SwappedPath when one is a symlink.
    """
    if parts:
        found = _open_beneath(root_fd, parts, _DIRECTORY_FLAGS)
        if found is not None:
            return found
    # Opened anew, not dup'ed: a dup shares the root's read offset, so two threads listing the root at once
    # (os.listdir and os.scandir rewind it when done) would each miss or repeat entries.
    fd = os.open(".", _DIRECTORY_FLAGS, dir_fd=root_fd)
    try:
        for part in parts:
            if part in ("", ".", ".."):
                raise SwappedPath(f"'{part}' is not a plain name")
            try:
                child = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                child = os.open(part, _DIRECTORY_FLAGS, dir_fd=fd)
            except OSError as exc:
                if _is_link(fd, part):
                    raise SwappedPath(f"'{part}' is a symlink") from None
                raise exc
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_file_beneath(root_fd: int, parts: tuple[str, ...], flags: int) -> int:
    """Open the file `parts` below the root (read flags; O_NOFOLLOW and O_NONBLOCK are added)."""
    found = _open_beneath(root_fd, parts, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if found is not None:
        return found
    parent = open_directory_beneath(root_fd, parts[:-1])
    try:
        try:
            return os.open(parts[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
        except OSError:
            if _is_link(parent, parts[-1]):
                raise SwappedPath(f"'{parts[-1]}' is a symlink") from None
            raise
    finally:
        os.close(parent)


# openat2(2), Linux 5.6+: the kernel resolves a whole path beneath a directory and fails on any symlink on
# the way — in one call what the walk does a component at a time. Where it is missing, or says no for any
# reason, the walk runs and decides (with its precise errors).
_SYS_OPENAT2 = 437  # the same number on every architecture (the unified syscall table)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08
_openat2: Callable[[int, bytes, int], int] | None = None
_openat2_missing = not sys.platform.startswith("linux")


def _open_beneath(root_fd: int, parts: tuple[str, ...], flags: int) -> int | None:
    """`parts` opened beneath the root by openat2 with no symlink followed; None when openat2 did not open it."""
    global _openat2, _openat2_missing
    if _openat2_missing or any(part in ("", ".", "..") or "/" in part for part in parts):
        return None
    if _openat2 is None:
        _openat2 = _load_openat2()
        if _openat2 is None:
            _openat2_missing = True
            return None
    fd = _openat2(root_fd, "/".join(parts).encode(), flags)
    if fd >= 0:
        return fd
    if -fd in (errno.ENOSYS, errno.EPERM):  # an old kernel, or a seccomp filter refusing it
        _openat2_missing = True
    return None


def _load_openat2() -> Callable[[int, bytes, int], int] | None:
    """openat2 through libc's syscall(): a descriptor, or minus the errno. (ctypes loads on first use only.)"""
    import ctypes

    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]

    resolve = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS

    def openat2(dir_fd: int, path: bytes, flags: int) -> int:
        how = OpenHow(flags, 0, resolve)
        fd = syscall(
            ctypes.c_long(_SYS_OPENAT2),
            ctypes.c_int(dir_fd),
            ctypes.c_char_p(path),
            ctypes.byref(how),
            ctypes.c_size_t(ctypes.sizeof(how)),
        )
        return int(fd) if fd >= 0 else -ctypes.get_errno()

    return openat2


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
