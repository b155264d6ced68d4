"""The one boundary: how every program loomkin starts for a project is confined.

Shell commands, every git invocation, the language servers and loomkin's own helpers run under
bubblewrap: the whole file system read-only but for the paths named writable, no network unless
allowed, a PID namespace that dies with the call, a seccomp filter that refuses `socket(AF_UNIX)`
(so nothing reaches an ssh-agent, a gpg-agent, a Docker or D-Bus socket outside — abstract sockets
are already cut off by the network namespace), and an environment built from an allow-list, never
the server's own (API keys, tokens, database URLs stay with the server).

This module only builds argv, environment and filter; what each kind of program may write is said
by its service (`services/sandbox.py`) and by the trust layer's git reads.
"""

from __future__ import annotations

import os
import platform
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Passed through from the server's environment: what programs need to find themselves, their toolchains
# and the person's identity and locale. Nothing that carries a credential.
_ENVIRONMENT_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "COLORTERM", "NO_COLOR",
        "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
        "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE",
        "PYTHONUTF8", "PYTHONIOENCODING", "PYENV_ROOT", "PYENV_VERSION",
        "NODE_PATH", "NVM_DIR", "GOPATH", "GOROOT", "GOCACHE", "GOMODCACHE", "GOFLAGS", "GO111MODULE",
        "GOTOOLCHAIN", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "JAVA_HOME", "MIX_HOME", "HEX_HOME",
        "MIX_ENV", "GEM_HOME", "GEM_PATH", "RBENV_ROOT", "ASDF_DIR", "ASDF_DATA_DIR",
        "CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "PKG_CONFIG_PATH", "LD_LIBRARY_PATH",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "CI",
        "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE",
    }
)  # fmt: skip
_ENVIRONMENT_PREFIXES = ("LC_",)
# A failed probe is tried again after this long: one probe that timed out under load must not turn the
# sandbox off for the life of the process.
_PROBE_RETRY_SECONDS = 30.0


def environment(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of `base` (the server's environment), plus `extra`."""
    source = os.environ if base is None else base
    kept = {
        name: value
        for name, value in source.items()
        if name in _ENVIRONMENT_NAMES or name.startswith(_ENVIRONMENT_PREFIXES)
    }
    return kept | dict(extra or {})


@dataclass(frozen=True, kw_only=True)
class Boundary:
    """What one confined program may touch."""

    writable: tuple[Path, ...] = ()
    """Bound read-write, in this order (a later read-only path inside one of them stays read-only)."""
    read_only: tuple[Path, ...] = ()
    """Inside a writable path, kept read-only; only what exists can be bound."""
    bound_read_only: tuple[tuple[str, Path], ...] = ()
    """(source, where): a source given by path (a held descriptor's `/proc/self/fd/N`) bound read-only there."""
    network: bool = False
    starts_programs: bool = True
    """Its own PID, IPC and UTS namespaces, /dev and /proc, and a session: what holds a program that starts
    others (nothing outlives it). A helper that starts none (ripgrep) skips them: ~1 ms less a start."""
    chdir: Path | None = None
    setenv: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Confined:
    """A program as it is started confined: pass `argv`, `env` and `pass_fds` to the spawn, then `close()`."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    wrapped: bool = False
    """Started by bubblewrap, which reports the program's death by signal N as exit code 128 + N."""

    def close(self) -> None:
        for fd in self.pass_fds:
            try:
                os.close(fd)
            except OSError:
                pass


def bubblewrap_argv(bwrap: str, boundary: Boundary, seccomp_fd: int | None = None) -> list[str]:
    argv = [bwrap, "--ro-bind", "/", "/"]
    argv += ["--dev", "/dev", "--proc", "/proc"] if boundary.starts_programs else []
    for path in boundary.writable:
        argv += ["--bind", str(path), str(path)]
    for path in boundary.read_only:
        argv += ["--ro-bind", str(path), str(path)]
    for source, where in boundary.bound_read_only:
        argv += ["--ro-bind", source, str(where)]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--new-session"] if boundary.starts_programs else []
    # Run as root, bubblewrap leaves the sandbox every capability: a program could remount a read-only bind
    # writable (`mount -o remount,bind,rw .git`). None is needed inside.
    argv += ["--die-with-parent", "--cap-drop", "ALL"]
    argv += [] if boundary.network else ["--unshare-net"]
    for name, value in boundary.setenv.items():
        argv += ["--setenv", name, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    if boundary.chdir is not None:
        argv += ["--chdir", str(boundary.chdir)]
    return argv


def confine(argv: list[str], boundary: Boundary, env: dict[str, str], bwrap: str | None = None) -> Confined:
    """`argv` under bubblewrap (`bwrap`, default: the one found here) with the unix-socket filter where
    this machine's architecture has one. Without bubblewrap the caller decides; this needs it."""
    bwrap = bwrap or find_bubblewrap()
    assert bwrap is not None, "confine() needs bubblewrap; check find_bubblewrap() first"
    program = unix_socket_filter()
    fds: tuple[int, ...] = ()
    if program is not None:
        # A fresh pipe per start: bubblewrap reads the filter to its end, so a shared descriptor would be
        # empty for the next one. 8 bytes an instruction, far below a pipe's buffer.
        read_end, write_end = os.pipe()
        os.write(write_end, program)
        os.close(write_end)
        fds = (read_end,)
    return Confined([*bubblewrap_argv(bwrap, boundary, fds[0] if fds else None), "--", *argv], env, fds, True)


_probe_lock = threading.Lock()
_probe: tuple[str | None, float] | None = None


def find_bubblewrap() -> str | None:
    """`bwrap` when it can actually make a sandbox here (a kernel may refuse it namespaces).

    A success is kept for the life of the process; a failure is tried again after 30 s.
    """
    global _probe
    with _probe_lock:
        if _probe is not None and (_probe[0] is not None or time.monotonic() - _probe[1] < _PROBE_RETRY_SECONDS):
            return _probe[0]
        _probe = (_probe_bubblewrap(), time.monotonic())
        return _probe[0]


def _probe_bubblewrap() -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    found = shutil.which("bwrap")
    if found is None:
        return None
    confined = confine(["true"], Boundary(), {}, bwrap=found)
    try:
        done = subprocess.run(
            confined.argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=10, pass_fds=confined.pass_fds
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        confined.close()
    return found if done.returncode == 0 else None


# -- the seccomp filter -------------------------------------------------------------------------
# A classic BPF program over `struct seccomp_data` {int nr; u32 arch; u64 ip; u64 args[6]}: for the
# architectures below, `socket(AF_UNIX, …)` (and i386's `socketcall(SYS_SOCKET, …)`, whose domain is
# out of reach in memory) fail with EPERM; every other call is allowed. `socketpair` stays allowed:
# it connects a program to itself only.
_LD_W_ABS, _JEQ_K, _AND_K, _RET_K = 0x20, 0x15, 0x54, 0x06
_RET_ALLOW, _RET_EPERM = 0x7FFF0000, 0x00050000 | 1
_AF_UNIX, _SYS_SOCKET = 1, 1
_X32_BIT = 0x40000000
# AUDIT_ARCH_* → (socket's number, socketcall's number or None, whether x32 numbers share the arch)
_SOCKET_CALLS = {
    "x86_64": {0xC000003E: (41, None, True), 0x40000003: (359, 102, False)},
    "aarch64": {0xC00000B7: (198, None, False), 0x40000028: (281, None, False)},
}


def _instruction(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _assemble(program: list[tuple[int, int, str | None, str | None] | str]) -> bytes:
    """Instructions `(code, k, true-label, false-label)` and label names; jumps are resolved forward."""
    labels: dict[str, int] = {}
    position = 0
    for item in program:
        if isinstance(item, str):
            labels[item] = position
        else:
            position += 1
    out, position = [], 0
    for item in program:
        if isinstance(item, str):
            continue
        code, k, true, false = item
        jt = labels[true] - position - 1 if true else 0
        jf = labels[false] - position - 1 if false else 0
        out.append(_instruction(code, k, jt, jf))
        position += 1
    return b"".join(out)


def _build_filter(calls: Mapping[int, tuple[int, int | None, bool]]) -> bytes:
    program: list[tuple[int, int, str | None, str | None] | str] = [(_LD_W_ABS, 4, None, None)]
    for index, arch in enumerate(calls):
        program.append((_JEQ_K, arch, None, f"arch{index + 1}"))
        socket_nr, socketcall_nr, x32 = calls[arch]
        program.append((_LD_W_ABS, 0, None, None))
        if x32:
            program.append((_AND_K, 0xFFFFFFFF ^ _X32_BIT, None, None))
        if socketcall_nr is not None:
            program.append((_JEQ_K, socketcall_nr, f"socketcall{index}", None))
        program.append((_JEQ_K, socket_nr, None, "allow"))
        program += [(_LD_W_ABS, 16, None, None), (_JEQ_K, _AF_UNIX, "deny", "allow")]
        if socketcall_nr is not None:
            program += [f"socketcall{index}", (_LD_W_ABS, 16, None, None), (_JEQ_K, _SYS_SOCKET, "deny", "allow")]
        program.append(f"arch{index + 1}")
        if index + 1 < len(calls):
            program.append((_LD_W_ABS, 4, None, None))
    program += ["allow", (_RET_K, _RET_ALLOW, None, None), "deny", (_RET_K, _RET_EPERM, None, None)]
    return _assemble(program)


_FILTERS = {machine: _build_filter(calls) for machine, calls in _SOCKET_CALLS.items()}


def unix_socket_filter() -> bytes | None:
    """The compiled filter for this machine, or None where none is written (then sockets are not blocked)."""
    if not sys.platform.startswith("linux"):
        return None
    return _FILTERS.get(platform.machine())


def blocks_unix_sockets() -> bool:
    return unix_socket_filter() is not None
