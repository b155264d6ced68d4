"""`.gitignore` / `.ignore` rules, as git reads them, for listing and searching the project."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._glob import compile_glob

IGNORE_FILES = (".gitignore", ".ignore")


@dataclass(frozen=True)
class _Rule:
    pattern: str
    anchored: bool
    negated: bool
    directory_only: bool


class IgnoreRules:
    """Answers "is this path ignored?" for paths below `root`; files are re-read when they change."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._cache: dict[Path, tuple[tuple[int, ...], list[_Rule]]] = {}

    def is_ignored(self, relative_path: str, is_dir: bool) -> bool:
        """Whether git would ignore `relative_path` (POSIX, relative to the root). `.git` always is."""
        parts = relative_path.split("/")
        if ".git" in parts:
            return True
        ignored = False
        # Deeper ignore files win over shallower ones, and later lines over earlier ones.
        for depth in range(len(parts)):
            base = self._root.joinpath(*parts[:depth])
            below = "/".join(parts[depth:])
            for rule in self._rules(base):
                if rule.directory_only and not is_dir:
                    continue
                if compile_glob(rule.pattern, rule.anchored).fullmatch(below):
                    ignored = not rule.negated
        return ignored

    def _rules(self, directory: Path) -> list[_Rule]:
        files = [directory / name for name in IGNORE_FILES]
        if directory == self._root:
            files.append(directory / ".git" / "info" / "exclude")
        stamp = tuple(_mtime(path) for path in files)
        cached = self._cache.get(directory)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        rules = [rule for path, mtime in zip(files, stamp, strict=True) if mtime >= 0 for rule in _parse(path)]
        self._cache[directory] = (stamp, rules)
        return rules


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _parse(path: Path) -> list[_Rule]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    rules = []
    for line in lines:
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line[1:] if negated else line
        directory_only = line.endswith("/")
        line = line.rstrip("/")
        # git anchors a pattern to this directory when it has a slash anywhere but at the end.
        anchored = "/" in line
        line = line.lstrip("/")
        if line:
            rules.append(_Rule(line, anchored, negated, directory_only))
    return rules
