"""How to start one language server, and which files it is for."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ._languages import EXTENSION_LANGUAGE, find_executable, known_server, language_of


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    """Language ids (`python`); a `.ext` entry given in config is turned into its id."""
    extensions: frozenset[str] = frozenset()
    """Extra file extensions this server handles beyond its languages' own."""
    root_markers: tuple[str, ...] = ()
    initialization_options: Any = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    loaded_log: str = ""
    """A regex of the log message that says the server has read the workspace's files (KnownServer.loaded_log)."""

    @classmethod
    def build(cls, name: str, command: str, languages: list[str] | tuple[str, ...] = (), **kwargs: Any) -> ServerSpec:
        ids = {item for item in languages if not item.startswith(".")}
        extensions = {item.lower() for item in languages if item.startswith(".")}
        ids |= {EXTENSION_LANGUAGE[ext] for ext in extensions if ext in EXTENSION_LANGUAGE}
        return cls(name=name, command=command, languages=frozenset(ids), extensions=frozenset(extensions), **kwargs)

    def missing_program(self) -> str | None:
        """Why the server cannot start at all (its program is nowhere), or None."""
        if find_executable(self.command) or os.path.isfile(self.command):
            return None
        known = known_server(self.name) or known_server(self.command)
        install = f" ({known.install})" if known is not None and known.install else ""
        return f"{self.name}: `{self.command}` was not found; install it{install} or fix its `command` in [lsp]."

    def handles(self, path: Path | str) -> bool:
        language = language_of(path)
        return (language is not None and language in self.languages) or Path(path).suffix.lower() in self.extensions

    def language_id(self, path: Path | str) -> str:
        return language_of(path) or next(iter(sorted(self.languages)), "plaintext")

    def setting(self, section: str | None) -> Any:
        """The value `workspace/configuration` asks for: `a.b` looks up nested tables."""
        if not section:
            return dict(self.settings)
        value: Any = self.settings
        for part in section.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return None
            value = value[part]
        return value


class Launch(Protocol):
    """A server's process as its owner wants it started (inside a sandbox, with its own environment)."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...]
    wrapped: bool
    """Started through a wrapper (a sandbox) that reports death by signal N as exit code 128 + N."""

    def close(self) -> None:
        """Called once the process has started or failed to: descriptors passed to it are closed."""


Launcher = Callable[[ServerSpec, list[str]], Launch]
"""Turns a server's argv (its program's full path first) into how it is started."""
