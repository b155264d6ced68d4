"""The project being served: its root, settings, path guard, rules and ignore files."""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ._guard import STATE_DIR, PathGuard
from ._ignore import IgnoreRules
from ._rules import Rules, RulesFile


class Workspace:
    def __init__(self, root: Path, settings: Settings) -> None:
        self.guard = PathGuard(root)
        self.root = self.guard.root
        self.settings = settings
        self.ignore = IgnoreRules(self.root)
        self._rules_file = RulesFile(self.root)

    @property
    def rules(self) -> Rules:
        """LOOMKIN.md as it is on disk now."""
        return self._rules_file.current()

    def resolve(self, raw: str, *, what: str = "file_path") -> Path:
        return self.guard.resolve(raw, what=what)

    def resolve_for_write(self, raw: str, *, what: str = "file_path") -> Path:
        path = self.guard.resolve(raw, what=what)
        self.guard.check_writable(path, self.rules)
        return path

    def relative(self, path: Path) -> str:
        return self.guard.relative(path)

    def state_dir(self) -> Path:
        """`.loomkin/`: loomkin's caches and databases, never anything to commit (it ignores itself)."""
        state = self.root / STATE_DIR
        state.mkdir(exist_ok=True)
        ignore = state / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# loomkin-mcp's caches and state\n*\n")
        return state
