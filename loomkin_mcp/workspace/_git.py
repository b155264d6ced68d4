"""Which repository git works on for a project, and what in git's configuration makes it run a program.

git takes no orders from the repository: loomkin finds the repository itself (the project's own
`.git`, a directory or a `gitdir:` file leading inside the project, with its `commondir` and object
alternates inside too) and names it with `--git-dir` and `--work-tree`, so `core.worktree` and a
`.git` leading elsewhere cannot point git at another tree. Every configuration key through which git
runs a program is in `PROGRAM_KEYS`, the one table the overrides are made from; a test checks it
against git's own list of keys (`git help --config`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .._confine import Boundary, confine, environment, find_bubblewrap
from .._fs import OwnFileRefused, read_own_file

# Key pattern (lower case; `*` stands for a subsection, which may hold dots) → the value that runs nothing.
PROGRAM_KEYS: dict[str, str] = {
    "core.fsmonitor": "false", "core.hookspath": "/dev/null", "core.pager": "", "core.editor": "",
    "core.askpass": "", "core.sshcommand": "", "core.gitproxy": "", "core.alternaterefscommand": "",
    "sequence.editor": "", "diff.external": "", "diff.*.command": "", "diff.*.textconv": "",
    "interactive.difffilter": "", "filter.*.clean": "", "filter.*.smudge": "", "filter.*.process": "",
    "filter.*.required": "false", "merge.*.driver": "", "credential.helper": "", "credential.*.helper": "",
    "gpg.program": "", "gpg.*.program": "", "gpg.ssh.defaultkeycommand": "", "commit.gpgsign": "false",
    "tag.gpgsign": "false", "tag.forcesignannotated": "false", "push.gpgsign": "false",
    "log.showsignature": "false", "merge.verifysignatures": "false", "uploadpack.packobjectshook": "",
    "remote.*.uploadpack": "", "remote.*.receivepack": "", "remote.*.vcs": "", "pager.*": "false",
    "difftool.*.cmd": "", "difftool.*.path": "", "mergetool.*.cmd": "", "mergetool.*.path": "",
    "browser.*.cmd": "", "browser.*.path": "", "man.*.cmd": "", "man.*.path": "", "guitool.*.cmd": "",
    "web.browser": "", "help.browser": "", "instaweb.httpd": "", "imap.tunnel": "",
    "sendemail.sendmailcmd": "", "sendemail.tocmd": "", "sendemail.cccmd": "", "sendemail.headercmd": "",
    "sendemail.smtpserver": "",
}  # fmt: skip
# Never into a submodule: its own configuration is another repository's, outside these overrides' reach.
NO_SUBMODULES = {
    "diff.ignoreSubmodules": "all", "status.submoduleSummary": "false", "submodule.recurse": "false",
    "fetch.recurseSubmodules": "false", "push.recurseSubmodules": "no",
}  # fmt: skip
_REPOSITORY_SCOPES = ("local", "worktree")
_GIT_CONFIG_SECONDS = 5
_MAX_HOOK_BYTES = 1024 * 1024
_MAX_POINTER_BYTES = 64 * 1024


def program_key(key: str) -> str | None:
    """The table's pattern that `key` (as git lists it: section.subsection.name) falls under, or None."""
    lowered = key.lower()
    return next((pattern for pattern in PROGRAM_KEYS if fnmatch.fnmatchcase(lowered, pattern)), None)


def git_environment() -> dict[str, str]:
    """What every git loomkin runs gets: the allow-list, no system config, nothing interactive."""
    return environment(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_EDITOR": "true",
            "GIT_SEQUENCE_EDITOR": "true",
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "GIT_OPTIONAL_LOCKS": "0",
        }
    )


class GitRefused(Exception):
    """The repository leads outside the project; the message is one sentence saying so and what to do."""


@dataclass(frozen=True)
class Repository:
    git_dir: Path
    """The real git directory, inside the project."""
    work_tree: Path


def find_repository(root: Path) -> Repository | None:
    """The project's own repository; None when the root has no `.git`. Raises GitRefused when it leads out."""
    dotgit = root / ".git"
    if not os.path.lexists(dotgit):
        return None
    if os.path.isdir(dotgit):
        git_dir = Path(os.path.realpath(dotgit))
    elif os.path.isfile(dotgit):
        git_dir = _pointer(dotgit, root, "gitdir:")
    else:
        raise GitRefused(f"{dotgit} is neither a directory nor a `gitdir:` file, so git is not run; remove it.")
    _require_inside(git_dir, root, f"{dotgit} leads to {git_dir}")
    if os.path.isfile(git_dir / "commondir"):
        common = _pointer(git_dir / "commondir", git_dir, "")
        _require_inside(common, root, f"{git_dir / 'commondir'} leads to {common}")
    alternates = git_dir / "objects" / "info" / "alternates"
    if os.path.lexists(alternates):
        for line in _read_inside(alternates, root).splitlines():
            if line.strip() and not line.startswith("#"):
                target = Path(os.path.realpath(git_dir / "objects" / line.strip()))
                _require_inside(target, root, f"{alternates} borrows objects from {target}")
    return Repository(git_dir, root)


def _require_inside(path: Path, root: Path, what: str) -> None:
    if not (path == root or path.is_relative_to(root)):
        raise GitRefused(
            f"{what}, outside the project, so git is not run: loomkin uses only a repository inside the project "
            f"(serve that repository's own directory with --root, or remove the link)."
        )


def _read_inside(path: Path, root: Path) -> str:
    try:
        found = read_own_file(path, root, _MAX_POINTER_BYTES)
    except OwnFileRefused as exc:
        raise GitRefused(f"{path} is not read because {exc}, so git is not run; fix or remove it.") from None
    return found.data.decode("utf-8", errors="replace") if found else ""


def _pointer(path: Path, base: Path, prefix: str) -> Path:
    text = _read_inside(path, path.parent if prefix == "" else base).strip()
    if prefix and not text.startswith(prefix):
        raise GitRefused(f"{path} is not a `gitdir:` file, so git is not run; remove it or make it a directory.")
    target = text[len(prefix) :].strip()
    return Path(os.path.realpath(path.parent / target))


def enclosing_repository(root: Path) -> Path | None:
    """The directory above the root that holds a `.git`, when the project is a part of a larger repository."""
    return next((parent for parent in root.parents if os.path.lexists(parent / ".git")), None)


@dataclass(frozen=True)
class GitPrograms:
    """What a repository's own git config and hooks would make git run."""

    repository: dict[str, str]
    """Program-naming keys set in the repository's config (`.git/config`, its includes, worktree config)."""
    persons: dict[str, str]
    """The same kind of keys in the person's own config (global, command line)."""
    hooks: dict[str, str]
    """Hook name → digest of its content, for every executable hook in the hooks directory in force."""
    hooks_dir: Path | None = None
    unreadable: str | None = None
    """Why git's configuration could not be read (then git is not run at all until it can be)."""
    refused: str | None = None
    """Why git is not run on this repository at all (it leads outside the project)."""
    git_dir: Path | None = None
    origins: tuple[Path, ...] = field(default=())
    """Every configuration file git read: a change to any of them is a change to these programs."""

    def overrides(self, trusted: bool) -> dict[str, str]:
        """`-c` values under which git runs no program the configuration names.

        When the person trusts the project, the repository's programs (fingerprinted, content and all)
        and the person's own stay in force; they run inside the sandbox like git itself.
        """
        kept = {key.lower() for key in (*self.repository, *self.persons)} if trusted else set()
        found = {pattern: neutral for pattern, neutral in PROGRAM_KEYS.items() if "*" not in pattern}
        for key in (*self.repository, *self.persons):
            pattern = program_key(key)
            if pattern is not None and "*" in pattern:
                found[key] = PROGRAM_KEYS[pattern]
        found = {key: value for key, value in found.items() if key.lower() not in kept}
        if trusted:
            found.pop("core.hookspath", None)  # the hooks in force are the ones fingerprinted
        return found | NO_SUBMODULES

    def grants(self) -> list[tuple[str, list[str]]]:
        """(what the person is shown, what is fingerprinted) for each program the repository names."""
        grants = [
            (f"git runs `{value}` ({key} in the repository's own git config)", [key, value])
            for key, value in sorted(self.repository.items())
        ]
        where = "repository's hook" if self.hooks_dir is None else f"hook in {self.hooks_dir}"
        grants += [
            (f"git runs the {where} `{name}`", ["hook", str(self.hooks_dir or ""), name, digest])
            for name, digest in sorted(self.hooks.items())
        ]
        if self.unreadable:
            grants.append((self.unreadable, ["unreadable", self.unreadable]))
        return grants


def read_git_programs(root: Path) -> GitPrograms | None:
    """What the repository at `root` names for git to run; None when `root` has no `.git` of its own.

    When git's configuration cannot be read in time (an include of a FIFO), `unreadable` says so;
    when the repository leads outside the project, `refused` does.
    """
    try:
        repository = find_repository(root)
    except GitRefused as exc:
        return GitPrograms({}, {}, {}, refused=str(exc))
    if repository is None:
        return None
    argv = ["git", f"--git-dir={repository.git_dir}", f"--work-tree={root}", "config", "--null", "--list"]
    argv += ["--show-scope", "--show-origin"]
    try:
        done = _run_read_only(argv, root)
    except FileNotFoundError:
        return None
    except (OSError, subprocess.TimeoutExpired):
        why = f"git's configuration could not be read within {_GIT_CONFIG_SECONDS} s (an include of a FIFO?)"
        return GitPrograms({}, {}, {}, unreadable=why, git_dir=repository.git_dir)
    repository_keys: dict[str, str] = {}
    persons: dict[str, str] = {}
    origins: set[Path] = set()
    worktree = None
    # `--null --show-scope --show-origin` writes `scope NUL origin NUL key LF value NUL` per entry.
    fields = done.stdout.decode("utf-8", errors="replace").split("\0")
    for scope, origin, entry in zip(fields[0::3], fields[1::3], fields[2::3], strict=False):
        key, _, value = entry.partition("\n")
        if origin.startswith("file:"):
            origins.add(Path(os.path.realpath(root / origin[5:])))
        if scope in _REPOSITORY_SCOPES and key.lower() == "core.worktree":
            worktree = value
        if program_key(key) is not None:
            (repository_keys if scope in _REPOSITORY_SCOPES else persons)[key] = value
    if worktree is not None and Path(os.path.realpath(repository.git_dir / worktree)) != root:
        target = os.path.realpath(repository.git_dir / worktree)
        refused = (
            f"the repository's core.worktree points git at {target}, not the project, so git is not run; "
            "remove that setting (`git config --unset core.worktree`) in a terminal."
        )
        return GitPrograms({}, {}, {}, refused=refused, git_dir=repository.git_dir)
    hooks_dir = _hooks_dir(repository, repository_keys, persons)
    return GitPrograms(
        repository_keys, persons, _hooks(hooks_dir), hooks_dir=hooks_dir if hooks_dir != repository.git_dir / "hooks"
        else None, git_dir=repository.git_dir, origins=tuple(sorted(origins)),
    )  # fmt: skip


def _run_read_only(argv: list[str], root: Path) -> subprocess.CompletedProcess[bytes]:
    """git reading its configuration: inside the sandbox (nothing writable) where one can be had."""
    env = git_environment()
    bwrap = find_bubblewrap()
    if bwrap is None:
        return subprocess.run(
            argv, cwd=root, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=_GIT_CONFIG_SECONDS
        )
    confined = confine(argv, Boundary(chdir=root), env, bwrap)
    try:
        return subprocess.run(
            confined.argv, cwd=root, env=confined.env, pass_fds=confined.pass_fds, stdin=subprocess.DEVNULL,
            capture_output=True, timeout=_GIT_CONFIG_SECONDS,
        )  # fmt: skip
    finally:
        confined.close()


def _hooks_dir(repository: Repository, repository_keys: dict[str, str], persons: dict[str, str]) -> Path:
    """Where git takes its hooks from: `core.hooksPath` (the repository's over the person's) or `.git/hooks`."""
    pairs = [*repository_keys.items(), *persons.items()]
    configured = next((value for key, value in pairs if key.lower() == "core.hookspath"), None)
    if not configured:
        return repository.git_dir / "hooks"
    return Path(os.path.realpath(repository.work_tree / os.path.expanduser(configured)))


def _hooks(directory: Path) -> dict[str, str]:
    hooks = {}
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return {}
    for entry in entries:
        if entry.name.endswith(".sample") or not os.access(entry.path, os.X_OK) or entry.is_dir():
            continue
        try:
            found = read_own_file(Path(entry.path), Path("/"), _MAX_HOOK_BYTES)
            digest = hashlib.sha256(found.data).hexdigest() if found else "missing"
        except OwnFileRefused as exc:
            digest = f"unreadable: {exc}"
        hooks[entry.name] = digest
    return hooks


def git_stamp(root: Path, last: GitPrograms | None) -> tuple[int, ...]:
    """Changes whenever what git would run may have: what the git grants are cached by.

    The `.git` entry, the git directory, every configuration file git read last time (includes
    too), the hooks directory in force and each hook in it; `*.sample` hooks never run, and a
    sample renamed into a hook changes the directory's own stamp.
    """
    dotgit = root / ".git"
    git_dir = last.git_dir if last is not None and last.git_dir is not None else dotgit
    hooks_dir = last.hooks_dir if last is not None and last.hooks_dir is not None else git_dir / "hooks"
    paths = [dotgit, git_dir, git_dir / "config", git_dir / "config.worktree", git_dir / "commondir", hooks_dir]
    paths += list(last.origins) if last is not None else []
    try:
        paths += [Path(entry.path) for entry in os.scandir(hooks_dir) if not entry.name.endswith(".sample")]
    except OSError:
        pass
    stamp: list[int] = []
    for path in paths:
        try:
            # Followed: a hook or include that is a link changes when what it leads to does.
            info = os.stat(path)
            stamp += [info.st_mtime_ns, info.st_size, info.st_ino, info.st_ctime_ns]
        except OSError:
            stamp += [-1, -1, -1, -1]
    try:
        stamp.append(os.lstat(dotgit).st_ino)  # `.git` swapped for a link to the same place
    except OSError:
        stamp.append(-1)
    return tuple(stamp)
