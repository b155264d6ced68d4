"""The project being served: its root, trust, settings in force, path guard, rules and ignore files."""

from __future__ import annotations

import os
from pathlib import Path

from .._errors import ToolInputError
from .._fs import OwnFileRefused, ensure_no_link, open_root, own_directory
from ..config import LoomkinConfig, Settings
from ._guard import STATE_DIR, PathGuard
from ._ignore import IgnoreRules
from ._instructions import ConventionFiles, Instructions
from ._rules import Rules, RulesFile
from ._trust import Trust, TrustStore


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


class Workspace:
    def __init__(self, root: Path, settings: Settings, trust_store: TrustStore | None = None) -> None:
        self.guard = PathGuard(root)
        self.root = self.guard.root
        self.root_fd = open_root(self.root)
        """The root, held open: file operations walk from it by descriptor (see `_fs`)."""
        self.settings = settings
        self.ignore = IgnoreRules(self.root)
        self._rules_file = RulesFile(self.root)
        self._convention_files = ConventionFiles(self.root)
        self.trust = Trust(self.root, settings, self._rules_file.current, trust_store or TrustStore())
        self._config_identity = _identity(settings.path) if settings.path else None

    @property
    def config(self) -> LoomkinConfig:
        """The settings in force: the person's config, the project's over it, less what trust holds back."""
        return self.trust.config()

    @property
    def rules(self) -> Rules:
        """LOOMKIN.md as it is on disk now."""
        return self._rules_file.current()

    @property
    def other_instructions(self) -> list[Instructions]:
        """AGENTS.md, CLAUDE.md, `.cursorrules`…: instructions for the model, never permissions."""
        return self._convention_files.current()

    def close(self) -> None:
        """Let go of the root's descriptor (the project is no longer served): a later file operation fails (EBADF)
        rather than reach whatever would reuse the number."""
        fd, self.root_fd = self.root_fd, -1
        if fd >= 0:
            os.close(fd)

    def resolve(self, raw: str, *, what: str = "file_path") -> Path:
        return self.guard.resolve(raw, what=what)

    def resolve_for_write(self, raw: str, *, what: str = "file_path") -> Path:
        rules = self.rules
        protected = frozenset(i for i in (self._rules_file.identity, self._config_identity) if i is not None)
        return self.guard.resolve_for_write(raw, rules, protected, what=what)

    def relative(self, path: Path) -> str:
        return self.guard.relative(path)

    def state_dir(self) -> Path:
        """`.loomkin/`: loomkin's caches and databases, never anything to commit (it ignores itself).

        A real directory inside the root: a planted symlink or file there is refused, never followed.
        """
        try:
            state = own_directory(self.root / STATE_DIR, self.root)
            ignore = state / ".gitignore"
            ensure_no_link(ignore)
        except OwnFileRefused as exc:
            raise ToolInputError(
                f"{self.root / STATE_DIR} cannot hold loomkin's state because {exc}; remove it and try again."
            ) from None
        if not ignore.exists():
            ignore.write_text("# loomkin-mcp's caches and state\n*\n")
        return state

    def state_directory(self, name: str) -> Path:
        """A directory under `.loomkin/`, created when missing; never a planted link or file."""
        path = self.state_dir() / name
        try:
            return own_directory(path, self.root)
        except OwnFileRefused as exc:
            raise ToolInputError(f"{path} cannot be used because {exc}; remove it and try again.") from None

    def state_file(self, *parts: str) -> Path:
        """A file under `.loomkin/` that loomkin will create or open: refused when something planted is there."""
        path = self.state_dir().joinpath(*parts)
        try:
            for directory in reversed(path.relative_to(self.root).parents[:-2]):
                own_directory(self.root / directory, self.root)
            ensure_no_link(path)
        except OwnFileRefused as exc:
            raise ToolInputError(f"{path} cannot be used because {exc}; remove it and try again.") from None
        return path
