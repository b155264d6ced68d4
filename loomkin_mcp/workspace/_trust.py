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
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import ConfigError, counted, one_line
from .._fs import OwnFileRefused, atomic_write, read_own_file
from .._redact import redact
from ..config import READ_ONLY_TOOLS, LoomkinConfig, Settings, inside_project, merge_configs, user_config_dir
from ._git import GitPrograms, git_stamp, read_git_programs
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
        # The whole entry is fingerprinted: any change to how it starts asks again.
        grants.append(Grant("upstream", f"upstream MCP server `{name}`: {text}", _canonical(entry)))
    for entry in project.get("lsp", {}).get("servers", []):
        text = f"language server `{entry.get('name', '?')}`: run `{_command_line(entry)}`" + _env_and_cwd(entry)
        for key in ("settings", "initialization_options"):
            if entry.get(key):
                text += f" with {key.replace('_', ' ')} {_canonical(entry[key])[:300]}"
        grants.append(Grant("language server", text, _canonical(entry)))
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
            git = [Grant("git", text, _canonical(material)) for text, material in programs.grants()] if programs else []
            grants = project_grants(self._settings.project, rules) + git
            cached = self._grants = (rules, programs, grants, fingerprint(grants))
        return cached

    def git_programs(self) -> GitPrograms | None:
        """The repository's own git programs (cached until its config or hooks change)."""
        stamp = git_stamp(self.root, self._git[1] if self._git is not None else None)
        if self._git is None or self._git[0] != stamp:
            programs = read_git_programs(self.root)
            # Stamped again with what this read found (its includes, its hooks directory).
            self._git = (git_stamp(self.root, programs), programs)
        return self._git[1]

    @property
    def trusted(self) -> bool:
        return not self.held_back()

    def held_back(self) -> list[Grant]:
        """The grants not in force because the person has not trusted this content (yet)."""
        _, _, grants, asked = self._current_grants()
        if not grants or (not self._store_in_project and self.store.fingerprint_for(self.root) == asked):
            return []
        return grants

    @functools.cached_property
    def _store_in_project(self) -> bool:
        """A trust store the project's own files could write is no store at all (decided once: every tool call
        asks whether the project is trusted, and both places are fixed for the server's life)."""
        return inside_project(self.store.path, self.root)

    def config(self) -> LoomkinConfig:
        """The person's config with the project's over it, less the grants while they are held back."""
        trusted = self.trusted
        if trusted not in self._configs:
            project = self._settings.project if trusted else without_grants(self._settings.project)
            self._configs[trusted] = LoomkinConfig.model_validate(merge_configs(self._settings.user, project))
        return self._configs[trusted]

    def grant(self) -> None:
        """Trust exactly the content asked for now (what it starts is the caller's: `_server.apply_trust`)."""
        if self._store_in_project:
            raise ConfigError(
                f"the trust store {self.store.path} is inside the project, where its own files could write it; "
                "set XDG_CONFIG_HOME to a directory outside the project."
            )
        self.store.record(self.root, self.grants())

    def describe(self, grants: list[Grant]) -> str:
        """The grants as lines a person reads (control and bidi characters shown escaped, secrets masked)."""
        return "\n".join(f"  - {redact(one_line(grant.text))}" for grant in grants)

    def notice(self) -> str | None:
        """One sentence saying what is held back and how to allow it; None when nothing is."""
        held = self.held_back()
        if not held:
            return None
        kinds = sorted({grant.kind for grant in held})
        return (
            f"this project ({self.root}) is not trusted, so what its own files ask for is held back "
            f"({counted(len(held), 'item')}: {', '.join(kinds)}); "
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
