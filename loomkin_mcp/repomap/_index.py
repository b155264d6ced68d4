"""The tags of every source file, cached on disk by path + mtime + size, updated one file at a time."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ._languages import grammar_for
from ._tags import FileTags, extract

logger = logging.getLogger("loomkin_mcp.repomap")

CACHE_VERSION = 1
# Larger files are generated or vendored far more often than written by hand: not mapped.
MAX_FILE_BYTES = 1024 * 1024

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class BuildStats:
    files: int
    parsed: int
    from_cache: int


class RepoIndex:
    def __init__(self, root: Path, cache_path: Path, list_files: Callable[[], list[str]]) -> None:
        self.root = root
        self.tags: dict[str, FileTags] = {}
        self._cache_path = cache_path
        self._list_files = list_files
        self._dirty = False

    def build(self, progress: Progress | None = None) -> BuildStats:
        """Index every source file; files unchanged since the cache was written are not parsed."""
        cached = self._load_cache()
        names = [name for name in self._list_files() if grammar_for(name) is not None]
        tags: dict[str, FileTags] = {}
        parsed = 0
        for done, name in enumerate(names, start=1):
            info = self._stat(name)
            if info is not None:
                hit = cached.get(name)
                if hit is not None and (hit.mtime_ns, hit.size) == info:
                    tags[name] = hit
                else:
                    fresh = self._parse(name, *info)
                    if fresh is not None:
                        tags[name] = fresh
                        parsed += 1
            if progress is not None and (done % 200 == 0 or done == len(names)):
                progress(done, len(names))
        self.tags = tags
        self._dirty = parsed > 0 or len(tags) != len(cached)
        self.save()
        return BuildStats(len(tags), parsed, len(tags) - parsed)

    def update(self, names: Iterable[str]) -> bool:
        """Re-read changed files (or drop deleted ones); True when the index changed."""
        changed = False
        for name in names:
            if grammar_for(name) is None:
                continue
            info = self._stat(name)
            old = self.tags.get(name)
            if info is None:
                changed |= self.tags.pop(name, None) is not None
                continue
            if old is not None and (old.mtime_ns, old.size) == info:
                continue
            fresh = self._parse(name, *info)
            if fresh is None:
                changed |= self.tags.pop(name, None) is not None
            else:
                self.tags[name] = fresh
                changed = True
        self._dirty |= changed
        return changed

    def save(self) -> None:
        """Write the cache (atomically) when it changed; the next start is then warm."""
        if not self._dirty:
            return
        from .._fs import atomic_write

        self._cache_path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": CACHE_VERSION, "files": {name: tags.to_json() for name, tags in self.tags.items()}}
        atomic_write(self._cache_path, json.dumps(payload, separators=(",", ":")).encode())
        self._dirty = False

    def _load_cache(self) -> dict[str, FileTags]:
        try:
            payload = json.loads(self._cache_path.read_bytes())
            if payload.get("version") != CACHE_VERSION:
                return {}
            return {name: FileTags.from_json(data) for name, data in payload["files"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _stat(self, name: str) -> tuple[int, int] | None:
        try:
            info = os.stat(self.root / name)
        except OSError:
            return None
        if info.st_size > MAX_FILE_BYTES:
            return None
        return info.st_mtime_ns, info.st_size

    def _parse(self, name: str, mtime_ns: int, size: int) -> FileTags | None:
        try:
            source = (self.root / name).read_bytes()
        except OSError:
            return None
        try:
            return extract(name, source, mtime_ns, size)
        except Exception:  # noqa: BLE001 - one unparsable file must not stop the map
            logger.debug("could not index %s", name, exc_info=True)
            return None
