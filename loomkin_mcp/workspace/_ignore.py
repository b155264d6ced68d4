"""`.gitignore` / `.ignore` rules, as git reads them, for listing and searching the project."""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .._fs import OwnFileRefused, read_own_file
from ._glob import compile_glob

IGNORE_FILES = (".gitignore", ".ignore")
# What ripgrep opens by name in every directory it walks (following links, blocking on a FIFO).
RG_IGNORE_FILES = (*IGNORE_FILES, ".rgignore")
# Directory levels below which nothing is walked in Python: checking a path's ignore files costs a stat
# per level, so a hostile 3,000-level tree would cost millions; real projects are a few dozen deep.
MAX_DEPTH = 128
# Ignore files are read for every listing and search: a real one is a few KB.
MAX_IGNORE_BYTES = 1024 * 1024

logger = logging.getLogger("loomkin_mcp.ignore")


@dataclass
class _Scanned:
    """One directory as the unsafe-ignore-file walk last saw it."""

    stamp: tuple[int, int]
    """(mtime, inode): entries added, removed or renamed change it."""
    ignore_files: tuple[str, ...]
    """The ignore files it holds (their paths): only these are looked at again while `stamp` holds."""
    rules: tuple[int, ...]
    """mtimes of its ignore files when it was scanned and `kept` was worked out."""
    subdirectories: list[str]
    unsafe: str | None
    kept: list[str] | None
    """The subdirectories not ignored (None: not worked out yet)."""


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
        self._scanned: dict[str, _Scanned] = {}

    def walked(self, base: Path) -> bool:
        """Whether `unsafe_ignore_file(base)` ran before (a next run stats what it read then)."""
        return str(base) in self._scanned

    def unsafe_ignore_file(self, base: Path) -> Path | None:
        """An ignore file under `base` that ripgrep must not be left to open, or None.

        ripgrep opens `.gitignore`, `.ignore` and `.rgignore` in every directory it walks, following
        links and blocking on FIFOs (a `.gitignore -> /dev/zero` grows it without bound). Anything but a
        regular file inside the root of at most 1 MB is unsafe. A directory is scanned again only when
        its mtime changes (an entry added, removed or renamed) or one of its ignore files does, and which
        of its subdirectories are ignored is worked out again only when its own or an enclosing
        directory's ignore files change: a search costs a stat per directory, and one per ignore file.
        """
        root = str(self._root)
        # (directory, depth, whether ignore rules above it changed, whether any directory above has ignore files;
        # for a base below the root, the root's files are not looked at here, so assume it does).
        stack = [(str(base), 0, False, base != self._root)]
        if base == self._root and not _safe_ignore_file(self._root / ".git" / "info" / "exclude", self._root):
            return self._root / ".git" / "info" / "exclude"
        while stack:
            directory, depth, rules_changed_above, rules_above = stack.pop()
            if depth > MAX_DEPTH:
                continue  # deeper than any path ripgrep can open (PATH_MAX): it reports those itself
            try:
                info = os.lstat(directory)
            except OSError:
                continue
            stamp = (info.st_mtime_ns, info.st_ino)
            cached = self._scanned.get(directory)
            rules = _stamps(cached.ignore_files) if cached is not None else ()
            if cached is None or cached.stamp != stamp or cached.rules != rules:
                subdirectories, ignore_files, unsafe = _scan(directory, self._root)
                if directory == root:
                    ignore_files += (os.path.join(root, ".git", "info", "exclude"),)
                fresh = _Scanned(stamp, ignore_files, _stamps(ignore_files), subdirectories, unsafe, None)
                rules_changed = rules_changed_above or cached is None or cached.rules != fresh.rules
                self._scanned[directory] = cached = fresh
            else:
                rules_changed = rules_changed_above
            if cached.unsafe is not None:
                return Path(directory) / cached.unsafe
            has_rules = rules_above or any(stamp >= 0 for stamp in cached.rules)
            if cached.kept is None or rules_changed:
                relative = os.path.relpath(directory, root)
                # With no ignore file here or above, nothing below is ignored: no rule to match (most trees).
                cached.kept = [
                    name for name in cached.subdirectories
                    if not has_rules or not self.is_ignored(name if relative == "." else f"{relative}/{name}", True)
                ]  # fmt: skip
            stack.extend((os.path.join(directory, name), depth + 1, rules_changed, has_rules) for name in cached.kept)
        return None

    def _ignore_files(self, directory: Path) -> list[Path]:
        """The files whose rules apply from `directory` down (git's own exclude file at the root)."""
        files = [directory / name for name in IGNORE_FILES]
        if directory == self._root:
            files.append(directory / ".git" / "info" / "exclude")
        return files

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
        files = self._ignore_files(directory)
        stamp = tuple(_mtime(path) for path in files)
        cached = self._cache.get(directory)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        found = [path for path, mtime in zip(files, stamp, strict=True) if mtime >= 0]
        rules = [rule for path in found for rule in _parse(path, self._root)]
        self._cache[directory] = (stamp, rules)
        return rules


def _scan(directory: str, root: Path) -> tuple[list[str], tuple[str, ...], str | None]:
    """A directory's subdirectories, its ignore files (paths) and the first of them that is unsafe."""
    subdirectories, ignore_files, unsafe = [], [], None
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return [], (), None
    for entry in entries:
        if entry.name == ".git":
            continue
        if entry.is_dir(follow_symlinks=False):
            subdirectories.append(entry.name)
        elif entry.name in RG_IGNORE_FILES:
            ignore_files.append(entry.path)
            if unsafe is None and not _safe_ignore_file(Path(entry.path), root):
                unsafe = entry.name
    return subdirectories, tuple(ignore_files), unsafe


def _stamps(paths: tuple[str, ...]) -> tuple[int, ...]:
    return tuple(_mtime(path) for path in paths)


def _safe_ignore_file(path: Path, root: Path) -> bool:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return not os.path.islink(path)  # a dangling link makes ripgrep report an error and exit 2
    except OSError:
        return False
    real = os.path.realpath(path)
    return stat.S_ISREG(info.st_mode) and info.st_size <= MAX_IGNORE_BYTES and Path(real).is_relative_to(root)


def _mtime(path: Path | str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _parse(path: Path, root: Path) -> list[_Rule]:
    try:
        found = read_own_file(path, root, MAX_IGNORE_BYTES)
    except OwnFileRefused as exc:
        logger.warning("%s is not read because %s; replace it with a regular file.", path, exc)
        return []
    if found is None:
        return []
    if found.truncated:
        logger.warning("%s is over %d MB; only its first MB is used.", path, MAX_IGNORE_BYTES >> 20)
    lines = found.data.decode("utf-8", errors="replace").splitlines()
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
