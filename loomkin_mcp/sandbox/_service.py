"""What each program loomkin starts for the project may touch: the one boundary, per kind of program.

- **Shell commands**: write only in the project (their TMPDIR a directory of their own), never
  loomkin's files (LOOMKIN.md and what it links to, `.loomkin.toml`, `.loomkin/`) nor the whole
  git directory (bound where it is, so renaming `.git` cannot carry the binds away).
- **git** (the git tool, the commit scanner, the map's history): reads with nothing writable;
  writes (add, commit, reset, stash) in the project and its git directory, but never the git
  configuration, the hooks or loomkin's files.
- **Language servers**: the project read-only; a cache directory of their own outside it.
- **loomkin's own helper** (ripgrep): nothing writable.

All of them: no network unless `[shell] network = true`, no unix socket (`_confine`), an allow-listed
environment, and nothing outliving the call. The rules in Python decide *what* may run; the kernel
holds the line on what it can then do.

macOS has `sandbox-exec`, which loomkin does not drive yet: there, as anywhere without bubblewrap,
`shell` refuses with the package to install or the setting (`[shell] sandbox = false`) that runs
commands unconfined; git and language servers then run unconfined, with the same environment.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .._confine import Boundary, Confined, blocks_unix_sockets, confine, environment, find_bubblewrap
from .._errors import ToolInputError
from ..config import ShellSection, xdg_home
from ..workspace import PROTECTED_FILES, STATE_DIR, Workspace

# Inside the git directory, what makes git run programs or read elsewhere: read-only even to git itself.
_GIT_CONTROL = ("config", "config.worktree", "hooks", "info/attributes", "commondir", "objects/info/alternates")
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
            sockets = "no unix sockets" if blocks_unix_sockets() else "unix sockets not blocked on this machine"
            return SandboxState(True, f"bubblewrap ({bwrap}): writes only in the project, {network}, {sockets}")
        return SandboxState(False, "no sandbox can be had here", _install_hint())

    def command(self, argv: list[str], scratch: Path) -> Confined:
        """A shell command as it runs: confined, or refused with one sentence when no sandbox can be had.
        `scratch`, a fresh directory, is its writable TMPDIR.

        With `[shell] sandbox = false` (the person's own setting, or a trusted project's) it runs as is.
        """
        env = environment({"TMPDIR": str(scratch)})
        if not self._config.sandbox:
            return Confined(argv, env)
        if find_bubblewrap() is None:
            raise ToolInputError(f"commands run only inside an OS sandbox and none can be had here; {_install_hint()}.")
        root = self._ws.root
        git_dir = self._git_dir()
        read_only = self._protected() + ([git_dir] if git_dir is not None else [])
        boundary = Boundary(
            writable=(root, scratch), read_only=tuple(read_only), network=self._config.network, chdir=root,
            setenv={"TMPDIR": str(scratch)},
        )  # fmt: skip
        return confine(argv, boundary, env)

    def git(self, argv: list[str], env: dict[str, str], writes: bool, git_dir: Path | None) -> Confined:
        """git as loomkin runs it on the repository at `git_dir`: `writes` for add, commit, reset and stash;
        confined where a sandbox can be had (else as it is: git still runs none of the repository's programs,
        see `services/git.py`)."""
        if not self._config.sandbox or find_bubblewrap() is None:
            return Confined(argv, env)
        root = self._ws.root
        if not writes:
            return confine(argv, Boundary(network=self._config.network, chdir=root), env)
        control = [git_dir / name for name in _GIT_CONTROL] if git_dir is not None else []
        writable = (root,) if git_dir is None or git_dir.is_relative_to(root) else (root, git_dir)
        read_only = self._protected() + [path for path in control if os.path.lexists(path) and not os.path.islink(path)]
        boundary = Boundary(writable=writable, read_only=tuple(read_only), network=self._config.network, chdir=root)
        return confine(argv, boundary, env)

    def language_server(self, name: str, argv: list[str], extra_env: Mapping[str, str]) -> Confined:
        """A language server: the project read-only, its own cache directory outside the project writable."""
        cache = self.cache_directory(name)
        env = environment(dict(extra_env) | {"XDG_CACHE_HOME": str(cache), "TMPDIR": str(cache / "tmp")})
        if not self._config.sandbox or find_bubblewrap() is None:
            return Confined(argv, env)
        boundary = Boundary(writable=(cache,), network=self._config.network, chdir=self._ws.root)
        return confine(argv, boundary, env)

    def helper(self, argv: list[str], held: str | None, directory: Path) -> Confined:
        """loomkin's own read-only helper (ripgrep) in `directory`: nothing writable, no network. `held`, the
        directory as a descriptor (`/proc/self/fd/N`), is bound over its own path, so no name is resolved again."""
        env = environment()
        if not self._config.sandbox or find_bubblewrap() is None:
            return Confined(argv, env)
        bound = ((held, directory),) if held is not None else ()
        return confine(argv, Boundary(bound_read_only=bound, starts_programs=False, chdir=directory), env)

    def cache_directory(self, server: str) -> Path:
        """`$XDG_CACHE_HOME/loomkin-mcp/lsp/<project>/<server>`: per project and server, outside every project."""
        base = xdg_home("XDG_CACHE_HOME", ".cache")
        project = hashlib.sha256(str(self._ws.root).encode()).hexdigest()[:16]
        safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in server)[:64] or "server"
        path = base / "loomkin-mcp" / "lsp" / project / safe
        (path / "tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def hint_for(self, output: str) -> str | None:
        """A line to add when a confined command failed for what the sandbox withholds."""
        if not self._config.sandbox:
            return None
        if not self._config.network and any(word in output for word in _NETWORK_FAILURES):
            return "the sandbox gives commands no network; the person can allow it with `[shell] network = true`."
        if "Read-only file system" in output and ".git" in output:
            return "the sandbox keeps .git read-only for commands; stage, commit, reset and stash with the git tool."
        return None

    def _protected(self) -> list[Path]:
        """loomkin's own files in the root, and where a link among them leads when that is inside the root:
        only what exists can be bound (the shell removes such a file a command creates)."""
        root = self._ws.root
        found = []
        for name in (*PROTECTED_FILES, STATE_DIR):
            path = root / name
            if not os.path.lexists(path):
                continue
            real = Path(os.path.realpath(path))
            if os.path.islink(path):
                if real.is_relative_to(root) and real != root and os.path.exists(real):
                    found.append(real)
            else:
                found.append(path)
        return found

    def _git_dir(self) -> Path | None:
        programs = self._ws.trust.git_programs()
        return programs.git_dir if programs is not None else None


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
