"""The OS sandbox every command loomkin runs for the model goes through: bubblewrap on Linux.

Inside it the whole file system is read-only except the project root (where the command's TMPDIR
is a directory of its own); loomkin's own files and git's configuration and hooks stay read-only
even inside the root; there is no network unless `[shell] network = true`; and nothing the command
starts outlives it (a PID namespace that dies with the call). The rules in Python decide *what*
may run; the kernel holds the line on what it can then do.

macOS has `sandbox-exec`, which loomkin does not drive yet: there, as anywhere without bubblewrap,
`shell` refuses with the package to install or the setting (`[shell] sandbox = false`) that runs
commands unconfined.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .._errors import ToolInputError
from ..config import ShellSection
from ..workspace import PROTECTED_FILES, STATE_DIR, Workspace

# Inside the root, these stay read-only for the command: the files that grant loomkin its
# permissions, and what makes git run programs.
READ_ONLY_IN_ROOT = (
    *PROTECTED_FILES,
    STATE_DIR,
    ".git/config",
    ".git/config.worktree",
    ".git/hooks",
    ".git/info/attributes",
)
# Words in a command's output that mean it wanted the network the sandbox does not give.
_NETWORK_FAILURES = (
    "Could not resolve host",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Name or service not known",
    "getaddrinfo",
    "nodename nor servname",
)


@dataclass(frozen=True)
class SandboxState:
    """Whether commands are confined, and if not why, for `doctor`, `shell` and the README's promise."""

    confined: bool
    detail: str
    fix: str | None = None


class Sandbox:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    @property
    def _config(self) -> ShellSection:
        return self._ws.config.shell

    def state(self) -> SandboxState:
        if not self._config.sandbox:
            return SandboxState(False, "off: `[shell] sandbox = false`, so commands run unconfined")
        bwrap = find_bubblewrap()
        if bwrap is not None:
            network = "network allowed" if self._config.network else "no network"
            return SandboxState(True, f"bubblewrap ({bwrap}): writes only in the project, {network}")
        return SandboxState(False, "no sandbox can be had here", _install_hint())

    def wrap(self, argv: list[str], required: bool = True, scratch: Path | None = None) -> list[str]:
        """`argv` as it runs confined; when no sandbox can be had, refuses with one sentence (`required`)
        or leaves it as it is. `scratch`, a fresh directory, is the command's writable TMPDIR.

        With `[shell] sandbox = false` (the person's own setting, or a trusted project's) it runs as is.
        """
        if not self._config.sandbox:
            return argv
        bwrap = find_bubblewrap()
        if bwrap is None:
            if not required:
                return argv
            raise ToolInputError(f"commands run only inside an OS sandbox and none can be had here; {_install_hint()}.")
        return [*bubblewrap_argv(bwrap, self._ws.root, self._config.network, scratch), "--", *argv]

    def hint_for(self, output: str) -> str | None:
        """A line to add when a confined command failed for lack of the network."""
        if self._config.sandbox and not self._config.network and any(word in output for word in _NETWORK_FAILURES):
            return "the sandbox gives commands no network; the person can allow it with `[shell] network = true`."
        return None


def bubblewrap_argv(bwrap: str, root: Path, network: bool, scratch: Path | None = None) -> list[str]:
    # /tmp stays as it is, read-only (programs and the project itself may live under it); the command's
    # own temporary files go to `scratch`, made for the call and removed after it.
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--bind", str(root), str(root)]
    for name in READ_ONLY_IN_ROOT:
        path = root / name
        # Only what exists can be bound; a link is bound as where it leads only when that is inside.
        if os.path.lexists(path) and not os.path.islink(path):
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
    argv += [] if network else ["--unshare-net"]
    if scratch is not None:
        argv += ["--bind", str(scratch), str(scratch), "--setenv", "TMPDIR", str(scratch)]
    argv += ["--chdir", str(root)]
    return argv


@functools.cache
def find_bubblewrap() -> str | None:
    """`bwrap` when it can actually make a sandbox here (a kernel may refuse it namespaces): tried once."""
    if not sys.platform.startswith("linux"):
        return None
    found = shutil.which("bwrap")
    if found is None:
        return None
    probe = [*bubblewrap_argv(found, Path("/"), network=False), "--", "true"]
    try:
        done = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return found if done.returncode == 0 else None


def _install_hint() -> str:
    if sys.platform == "darwin":
        return (
            "on macOS loomkin-mcp does not drive sandbox-exec yet, so the person must set `[shell] sandbox = false` "
            "in their own config to run commands unconfined"
        )
    return (
        "install bubblewrap (`apt-get install bubblewrap`, `dnf install bubblewrap`), or the person can set "
        "`[shell] sandbox = false` in their own config to run commands unconfined"
    )
