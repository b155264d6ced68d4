"""What loomkin-mcp and its children really did, from strace, and which files hold a marker.

The hostile corpus is judged by these, not by the server's own messages: every program executed, every
file created, opened for writing, renamed, linked, removed or chmod-ed, and every socket opened by the
whole process tree.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

# Syscalls that run a program, change a file, change where relative paths point, open a socket, or start
# a process (to know which processes descend from a sandbox).
TRACED = (
    "execve,execveat,open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,symlink,symlinkat,unlink,unlinkat,"
    "mkdir,mkdirat,rmdir,truncate,chmod,fchmodat,chdir,socket,clone,clone3,fork,vfork,dup,dup2,dup3,fcntl"
)
# Calls that give a descriptor another number (`os.dup` is fcntl(F_DUPFD_CLOEXEC)): a directory held that way
# and entered as /proc/self/fd/N is where the descriptor it copies led.
_DUPS = ("dup", "dup2", "dup3", "fcntl")
_OPENS = ("open", "openat", "openat2", "creat")
_FORKS = ("clone", "clone3", "fork", "vfork")
_INTO_DESCRIPTOR = re.compile(r'"/proc/self/fd/(\d+)"')
_TRANSLATED = re.compile(r" /\* (\d+) in strace's PID NS \*/$")
_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|0x[0-9a-f]+)(?:<(.*)>)?$")
_UNFINISHED = " <unfinished ...>"
_RESUMED = re.compile(r"^(\d+)\s+<\.\.\. \w+ resumed>(.*)$")
_STRING = r'"((?:[^"\\]|\\.)*)"'
_PATH_ARG = re.compile(rf"(?:(?:AT_FDCWD|\d+)<([^>]*)>,\s*)?{_STRING}")  # an optional decoded dirfd, a path
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")


def strace_launcher(log: Path) -> tuple[str, ...]:
    """Run the server under strace, following every child; only successful calls are logged."""
    strace = shutil.which("strace")
    assert strace, "strace is missing: `make test` installs it"
    return (strace, "-f", "-qq", "-z", "-y", "-s", "65536", "-e", "signal=none", "--seccomp-bpf",
            "--pidns-translation", "-e", f"trace={TRACED}", "-o", str(log), "--")  # fmt: skip


def _unescape(text: str) -> str:
    return codecs.escape_decode(text.encode("latin-1", "backslashreplace"))[0].decode("utf-8", "surrogateescape")


@dataclass
class Execution:
    pid: int
    program: str
    argv: list[str]


@dataclass
class Change:
    pid: int
    syscall: str
    path: str
    """Absolute and normalised; symlinks in the directory part are resolved as they are now."""


@dataclass
class Trace:
    executions: list[Execution] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    chdirs: list[Change] = field(default_factory=list)
    sockets: list[tuple[int, str]] = field(default_factory=list)
    """(pid, AF_UNIX / AF_INET…) of every socket(2) (socketpair, asyncio's own, is a different call)."""
    parents: dict[int, int] = field(default_factory=dict)
    thread_creators: dict[int, int] = field(default_factory=dict)
    """thread id → the thread that started it (CLONE_THREAD): threads of one process share its descriptors."""
    opened: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)
    """pid → (line number, descriptor, path) of every open or dup that returned one: a child that changes into
    `/proc/self/fd/N` (a directory its parent opened and checked) is judged by where N really led."""

    def process_of(self, pid: int) -> int:
        """The first thread of the process `pid` belongs to."""
        seen: set[int] = set()
        while pid in self.thread_creators and pid not in seen:
            seen.add(pid)
            pid = self.thread_creators[pid]
        return pid

    def descriptor_path(self, pid: int, fd: int, before: int) -> str | None:
        """Where descriptor `fd` of `pid` (or, inherited, of its ancestors) led at log line `before`.

        A descriptor number belongs to the process, not the thread that opened it: the last open returning
        `fd` in any thread of the process counts, else that of the process it was forked from."""
        seen: set[int] = set()
        process = self.process_of(pid)
        while process not in seen:
            seen.add(process)
            threads = [thread for thread in self.opened if self.process_of(thread) == process]
            found = [
                (line, path)
                for thread in threads
                for line, number, path in self.opened[thread]
                if number == fd and line < before
            ]
            if found:
                return max(found)[1]
            if process not in self.parents:
                return None
            process = self.process_of(self.parents[process])
        return None

    @property
    def socket_families(self) -> list[str]:
        return [family for _, family in self.sockets]

    def program_of(self, pid: int) -> str | None:
        """The last program `pid` executed (None: the server itself, or one of its threads)."""
        found = [e.program for e in self.executions if e.pid == pid]
        return found[-1] if found else None

    def sandboxed(self, pid: int) -> bool:
        """Whether `pid` is bubblewrap or runs under it: in its own mount, PID and network namespaces, where the
        file system is read-only but for the project and a private /tmp."""
        sandboxes = {e.pid for e in self.executions if os.path.basename(e.program) == "bwrap"}
        seen: set[int] = set()
        while pid not in seen:
            if pid in sandboxes:
                return True
            seen.add(pid)
            if pid not in self.parents:
                return False
            pid = self.parents[pid]
        return False


def read_trace(log: Path, cwd: Path) -> Trace:
    """Parse the strace log. Relative paths without a decoded directory are taken against `cwd`: the
    server runs there and every `chdir` is recorded, so an audit can refuse any that leaves it."""
    trace = Trace()
    pending: dict[str, str] = {}
    into_descriptors: list[tuple[int, int, int]] = []  # (line number, pid, fd) of chdir("/proc/self/fd/N")
    for number, line in enumerate(log.read_text(encoding="utf-8", errors="replace").splitlines()):
        if line.endswith(_UNFINISHED):
            pending[line.split(None, 1)[0]] = line.removesuffix(_UNFINISHED)
            continue
        resumed = _RESUMED.match(line)
        if resumed is not None:
            line = pending.pop(resumed.group(1), "") + resumed.group(2)
        # A child's pid from inside a PID namespace comes with strace's own: `= 2 /* 12339 in strace's PID NS */`.
        translated = _TRANSLATED.search(line)
        if translated is not None:
            line = line[: translated.start()].rstrip()
        match = _LINE.match(line)
        if match is None:
            continue
        pid, syscall, args, _result, returned_path = match.groups()
        pid_number = int(pid)
        if syscall == "socket":
            trace.sockets.append((pid_number, args.split(",", 1)[0]))
            continue
        if syscall in _FORKS:
            child = int(translated.group(1)) if translated else int(_result, 0)
            trace.parents[child] = pid_number
            if "CLONE_THREAD" in args:
                trace.thread_creators[child] = pid_number
            continue
        if syscall.startswith("execve"):
            strings = [_unescape(s) for s in re.findall(_STRING, args)]
            trace.executions.append(Execution(pid_number, strings[0], strings[1:]))
            continue
        if syscall in _DUPS or syscall in _OPENS:
            if returned_path is not None and _result.isdigit():
                trace.opened.setdefault(pid_number, []).append((number, int(_result), _unescape(returned_path)))
            if syscall in _DUPS or (syscall != "creat" and not any(flag in args for flag in _WRITE_FLAGS)):
                continue
            if returned_path is None or returned_path.startswith(("pipe:", "socket:", "anon_inode:")):
                continue
            trace.changes.append(Change(pid_number, syscall, os.path.normpath(_unescape(returned_path))))
            continue
        into = _INTO_DESCRIPTOR.fullmatch(args)
        if syscall == "chdir" and into is not None:
            into_descriptors.append((number, pid_number, int(into.group(1))))
            continue
        pairs = _PATH_ARG.findall(args)
        paths = [_absolute(_unescape(directory), _unescape(name), cwd) for directory, name in pairs]
        if syscall.startswith("symlink"):
            paths = paths[-1:]  # the first argument is the link's text, not a path that changes
        target = trace.chdirs if syscall == "chdir" else trace.changes
        target.extend(Change(pid_number, syscall, path) for path in paths)
    for number, pid, fd in into_descriptors:
        path = trace.descriptor_path(pid, fd, number)
        trace.chdirs.append(Change(pid, "chdir", os.path.normpath(path) if path else f"/proc/self/fd/{fd}"))
    return trace


def _absolute(directory: str, name: str, cwd: Path) -> str:
    base = directory or str(cwd)
    joined = os.path.normpath(os.path.join(base, name))
    parent, leaf = os.path.split(joined)
    return os.path.join(os.path.realpath(parent), leaf)


def inside(path: str, root: Path) -> bool:
    return path == str(root) or path.startswith(str(root) + os.sep)


def files_containing(tree: Path, needle: bytes) -> list[Path]:
    """Regular files under `tree` (symlinks not followed) whose bytes contain `needle`."""
    found = []
    for directory, _dirnames, filenames in os.walk(tree, followlinks=False):
        for name in filenames:
            path = Path(directory) / name
            if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
                found.append(path)
    return found
