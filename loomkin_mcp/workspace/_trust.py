"""Workspace trust: what a project's own files may make loomkin do, and only after the person says so.

A project's `.loomkin.toml`, LOOMKIN.md and `.git/` may have been written by anyone (a clone, a PR
branch, a tarball). Whatever in them would run a program, reach a network address or widen what
runs without asking — upstream MCP servers, language server commands, model endpoints,
auto-approvals beyond the read-only tools, `Shell:` allow rules, an unsandboxed or networked shell,
the programs the repository's git config names and its hooks — is a *grant*. Grants take effect only once the
person has trusted exactly that content: the store keeps, per project root, a fingerprint of the
grants, and any change to them asks again. The person's own config (`$XDG_CONFIG_HOME/loomkin/
loomkin.toml`) is theirs and needs no trust.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigError, one_line
from .._fs import OwnFileRefused, atomic_write, read_own_file
from ..config import READ_ONLY_TOOLS, LoomkinConfig, Settings, merge_configs, user_config_dir
from ._rules import Rules

TRUST_FILENAME = "trust.json"
_MAX_STORE_BYTES = 4 * 1024 * 1024

logger = logging.getLogger("loomkin_mcp.trust")


@dataclass(frozen=True)
class Grant:
    """One thing the project's own files ask for, as the person is shown it."""

    kind: str
    """`upstream`, `language server`, `endpoint`, `auto-approval`, `sandbox`, `shell` or `git`."""
    text: str
    material: str
    """Exactly what is fingerprinted (values of secrets included, never shown)."""


# git config keys (by their last part) through which a repository names a program for git to run:
# filter drivers, textconv and external diff, merge drivers, credential helpers, ssh, editors, pagers,
# gpg, fsmonitor, hooks. Each maps to the value that runs nothing.
GIT_PROGRAM_KEYS = {
    "clean": "", "smudge": "", "process": "", "textconv": "", "command": "", "driver": "", "helper": "",
    "program": "", "cmd": "", "sshcommand": "", "askpass": "", "editor": "", "pager": "", "gitproxy": "",
    "external": "", "packobjectshook": "", "alternaterefscommand": "", "difffilter": "",
    "required": "false", "showsignature": "false", "gpgsign": "false", "fsmonitor": "false",
    "hookspath": "/dev/null",
}  # fmt: skip
_REPOSITORY_SCOPES = ("local", "worktree")
_GIT_CONFIG_SECONDS = 5
_MAX_HOOK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class GitPrograms:
    """What a repository's own git config and hooks would make git run."""

    repository: dict[str, str]
    """Program-naming keys set in the repository's config (`.git/config`, its includes, worktree config)."""
    persons: dict[str, str]
    """The same kind of keys in the person's own config (system, global, command line)."""
    hooks: dict[str, str]
    """Hook name → digest of its content, for every executable hook in the repository's hooks directory."""
    unreadable: str | None = None
    """Why git's configuration could not be read (then git is not run at all until it can be)."""

    def overrides(self) -> dict[str, str]:
        """`-c` values under which git runs none of the repository's programs (the person's own stay)."""
        # Hooks run from .git/hooks/ unless the person's own config points elsewhere.
        found = {"core.hooksPath": self.persons.get("core.hookspath", "/dev/null")}
        for key in self.repository:
            last = key.rsplit(".", 1)[-1].lower()
            neutral = "false" if key.lower().startswith("pager.") else GIT_PROGRAM_KEYS[last]
            found[key] = self.persons.get(key, neutral)
        return found

    def grants(self) -> list[Grant]:
        grants = [
            Grant("git", f"git runs `{value}` ({key} in the repository's own git config)", _canonical([key, value]))
            for key, value in sorted(self.repository.items())
        ]
        grants += [
            Grant("git", f"git runs the repository's hook `{name}`", _canonical(["hook", name, digest]))
            for name, digest in sorted(self.hooks.items())
        ]
        if self.unreadable:
            grants.append(Grant("git", self.unreadable, _canonical(["unreadable", self.unreadable])))
        return grants


def read_git_programs(root: Path) -> GitPrograms | None:
    """What the repository at `root` names for git to run; None when `root` is not a git work tree.

    When git's configuration cannot be read in time (an include of a FIFO), `unreadable` says so.
    """
    git_dir = root / ".git"
    if not os.path.lexists(git_dir):
        return None
    try:
        done = subprocess.run(
            ["git", "config", "--null", "--list", "--show-scope"], cwd=root, stdin=subprocess.DEVNULL,
            capture_output=True, timeout=_GIT_CONFIG_SECONDS,
        )  # fmt: skip
    except FileNotFoundError:
        return None
    except (OSError, subprocess.TimeoutExpired):
        why = f"git's configuration could not be read within {_GIT_CONFIG_SECONDS} s (an include of a FIFO?)"
        return GitPrograms({}, {}, {}, why)
    repository: dict[str, str] = {}
    persons: dict[str, str] = {}
    # `--null --show-scope` writes `scope NUL key LF value NUL` per entry.
    fields = done.stdout.decode("utf-8", errors="replace").split("\0")
    for scope, entry in zip(fields[0::2], fields[1::2], strict=False):
        key, _, value = entry.partition("\n")
        if key.rsplit(".", 1)[-1].lower() in GIT_PROGRAM_KEYS or key.lower().startswith("pager."):
            (repository if scope in _REPOSITORY_SCOPES else persons)[key] = value
    return GitPrograms(repository, persons, _hooks(git_dir / "hooks"))


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


def _git_stamp(root: Path) -> tuple[int, ...]:
    """Changes whenever the repository's config or hooks may have: what the git grants are cached by.

    `*.sample` hooks never run, so only the others are looked at one by one; a sample renamed into a
    hook changes the hooks directory's own stamp.
    """
    git_dir = root / ".git"
    paths = [git_dir, git_dir / "config", git_dir / "config.worktree", git_dir / "hooks"]
    try:
        paths += [Path(entry.path) for entry in os.scandir(git_dir / "hooks") if not entry.name.endswith(".sample")]
    except OSError:
        pass
    stamp: list[int] = []
    for path in paths:
        try:
            info = os.stat(path)
            stamp += [info.st_mtime_ns, info.st_size, info.st_ino]
        except OSError:
            stamp += [-1, -1, -1]
    return tuple(stamp)


def project_grants(project: dict[str, Any], rules: Rules) -> list[Grant]:
    """Every grant in the project's `.loomkin.toml` (validated table) and LOOMKIN.md."""
    grants: list[Grant] = []
    for entry in project.get("mcp", {}).get("servers", []):
        name = entry.get("name", "?")
        if entry.get("url") is not None:
            headers = ", ".join(sorted(entry.get("headers", {})))
            text = f"connect to {entry['url']}" + (f" sending headers {headers}" if headers else "")
        else:
            text = f"run `{_command_line(entry)}`" + _env_and_cwd(entry)
        material = {key: entry.get(key) for key in ("name", "command", "args", "env", "cwd", "url", "headers")}
        grants.append(Grant("upstream", f"upstream MCP server `{name}`: {text}", _canonical(material)))
    for entry in project.get("lsp", {}).get("servers", []):
        material = {key: entry.get(key) for key in ("name", "command", "args", "env")}
        text = f"language server `{entry.get('name', '?')}`: run `{_command_line(entry)}`" + _env_and_cwd(entry)
        grants.append(Grant("language server", text, _canonical(material)))
    for name, endpoint in sorted(project.get("provider", {}).get("endpoints", {}).items()):
        material = {"name": name, "url": endpoint.get("url"), "auth_key": endpoint.get("auth_key")}
        text = f"model endpoint `{name}`: send requests to {endpoint.get('url')}"
        grants.append(Grant("endpoint", text, _canonical(material)))
    for pattern in project.get("permissions", {}).get("auto_approve", []):
        if pattern not in READ_ONLY_TOOLS:
            grants.append(Grant("auto-approval", f"run without asking: `{pattern}`", _canonical(["auto", pattern])))
    graph = project.get("decisions", {}).get("graph")
    if graph is not None:
        text = f"read and write the shared decision graph `{graph}` (PostgreSQL), which other projects may use"
        grants.append(Grant("decision graph", text, _canonical(["graph", graph])))
    shell = project.get("shell", {})
    if shell.get("sandbox") is False:
        grants.append(Grant("sandbox", "run shell commands and git outside the OS sandbox", _canonical(["unconfined"])))
    if shell.get("network") is True:
        grants.append(Grant("sandbox", "let sandboxed commands reach the network", _canonical(["network"])))
    for pattern in rules.shell_allowed:
        name = rules.path.name if rules.path else "LOOMKIN.md"
        grants.append(Grant("shell", f"shell commands matching `{pattern}` ({name})", _canonical(["shell", pattern])))
    return grants


def without_grants(project: dict[str, Any]) -> dict[str, Any]:
    """The project's config with every grant taken out (what an untrusted project keeps)."""
    kept = json.loads(json.dumps(project))  # a deep copy of plain TOML data
    kept.get("mcp", {}).pop("servers", None)
    kept.get("lsp", {}).pop("servers", None)
    kept.get("provider", {}).pop("endpoints", None)
    kept.get("shell", {}).pop("sandbox", None)
    kept.get("shell", {}).pop("network", None)
    kept.get("decisions", {}).pop("graph", None)
    permissions = kept.get("permissions", {})
    if "auto_approve" in permissions:
        permissions["auto_approve"] = [p for p in permissions["auto_approve"] if p in READ_ONLY_TOOLS]
    return kept


def fingerprint(grants: list[Grant]) -> str:
    return hashlib.sha256("\n".join(sorted(grant.material for grant in grants)).encode()).hexdigest()


class TrustStore:
    """`$XDG_CONFIG_HOME/loomkin/trust.json`: project root → fingerprint of what was trusted (mode 0600)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or user_config_dir() / TRUST_FILENAME
        self._cache: tuple[tuple[int, int] | None, dict[str, Any]] = (None, {})

    def entries(self) -> dict[str, dict[str, Any]]:
        try:
            info = os.stat(self.path)
        except OSError:
            return {}
        stamp = (info.st_mtime_ns, info.st_size)
        if self._cache[0] != stamp:
            self._cache = (stamp, self._read())
        return self._cache[1]

    def _read(self) -> dict[str, Any]:
        try:
            found = read_own_file(self.path, Path("/"), _MAX_STORE_BYTES)
            data = json.loads(found.data) if found else {}
        except (OwnFileRefused, ValueError) as exc:
            logger.warning("%s cannot be read (%s); no project counts as trusted until it is fixed.", self.path, exc)
            return {}
        projects = data.get("projects") if isinstance(data, dict) else None
        return {k: v for k, v in projects.items() if isinstance(v, dict)} if isinstance(projects, dict) else {}

    def fingerprint_for(self, root: Path) -> str | None:
        entry = self.entries().get(str(root))
        value = entry.get("fingerprint") if entry else None
        return value if isinstance(value, str) else None

    def record(self, root: Path, grants: list[Grant]) -> None:
        projects = dict(self.entries())
        projects[str(root)] = {
            "fingerprint": fingerprint(grants),
            "trusted_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "grants": [grant.text for grant in grants],
        }
        self._write(projects)

    def revoke(self, root: Path) -> bool:
        projects = dict(self.entries())
        if projects.pop(str(root), None) is None:
            return False
        self._write(projects)
        return True

    def _write(self, projects: dict[str, Any]) -> None:
        """Atomically, readable by the person only."""
        data = json.dumps({"version": 1, "projects": projects}, indent=2, sort_keys=True).encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self.path, data, mode=0o600)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot be written ({exc.strerror}); check that directory.") from None
        self._cache = (None, {})


class Trust:
    """Whether the person trusts what this project's files ask for, and the config in force because of it."""

    def __init__(self, root: Path, settings: Settings, rules: Callable[[], Rules], store: TrustStore) -> None:
        self.root = root
        self.store = store
        self._settings = settings
        self._rules = rules
        self._configs: dict[bool, LoomkinConfig] = {}
        self._git: tuple[tuple[int, ...], GitPrograms | None] | None = None
        # The grants and their fingerprint, for the Rules and GitPrograms objects they were made from: those
        # stay the same objects while nothing changed on disk, and every tool call asks for the config.
        self._grants: tuple[Rules, GitPrograms | None, list[Grant], str] | None = None

    def grants(self) -> list[Grant]:
        """What the project's files ask for now (LOOMKIN.md and git's config are read as they are on disk)."""
        return self._current_grants()[2]

    def _current_grants(self) -> tuple[Rules, GitPrograms | None, list[Grant], str]:
        rules, programs = self._rules(), self.git_programs()
        cached = self._grants
        if cached is None or cached[0] is not rules or cached[1] is not programs:
            grants = project_grants(self._settings.project, rules) + (programs.grants() if programs else [])
            cached = self._grants = (rules, programs, grants, fingerprint(grants))
        return cached

    def git_programs(self) -> GitPrograms | None:
        """The repository's own git programs (cached until its config or hooks change)."""
        stamp = _git_stamp(self.root)
        if self._git is None or self._git[0] != stamp:
            self._git = (stamp, read_git_programs(self.root))
        return self._git[1]

    @property
    def trusted(self) -> bool:
        return not self.held_back()

    def held_back(self) -> list[Grant]:
        """The grants not in force because the person has not trusted this content (yet)."""
        _, _, grants, asked = self._current_grants()
        if not grants or self.store.fingerprint_for(self.root) == asked:
            return []
        return grants

    def config(self) -> LoomkinConfig:
        """The person's config with the project's over it, less the grants while they are held back."""
        trusted = self.trusted
        if trusted not in self._configs:
            project = self._settings.project if trusted else without_grants(self._settings.project)
            self._configs[trusted] = LoomkinConfig.model_validate(merge_configs(self._settings.user, project))
        return self._configs[trusted]

    def grant(self) -> None:
        """Trust exactly the content asked for now (what it starts is the caller's: `_server.apply_trust`)."""
        self.store.record(self.root, self.grants())

    def describe(self, grants: list[Grant]) -> str:
        """The grants as lines a person reads (control and bidi characters shown escaped)."""
        return "\n".join(f"  - {one_line(grant.text)}" for grant in grants)

    def notice(self) -> str | None:
        """One sentence saying what is held back and how to allow it; None when nothing is."""
        held = self.held_back()
        if not held:
            return None
        kinds = sorted({grant.kind for grant in held})
        return (
            f"this project ({self.root}) is not trusted, so what its own files ask for is held back "
            f"({len(held)} item(s): {', '.join(kinds)}); "
            f"review and allow it with `loomkin-mcp trust --root {self.root}`."
        )


def _command_line(entry: dict[str, Any]) -> str:
    return " ".join([str(entry.get("command", "")), *map(str, entry.get("args", []))]).strip()


def _env_and_cwd(entry: dict[str, Any]) -> str:
    extra = []
    if entry.get("env"):
        extra.append("with environment " + ", ".join(f"{k}={v}" for k, v in sorted(entry["env"].items())))
    if entry.get("cwd"):
        extra.append(f"in {entry['cwd']}")
    return f" ({'; '.join(extra)})" if extra else ""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)
