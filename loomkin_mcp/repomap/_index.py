"""The tags of every source file, cached on disk by path + mtime + size, updated one file at a time."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin_lsp_client import die_with_parent

from .._fs import OwnFileRefused, atomic_write, open_file_beneath, open_root, read_own_file
from ..syntax import grammar_for
from ._tags import FileTags, extract

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event as Stop

logger = logging.getLogger("loomkin_mcp.repomap")

# 3: uses through modules (Elixir aliases, Python and JavaScript imports), JSX elements; 4: each file's tags kept as
# one JSON text, decoded when first read; 5: a name imported and not used is a use (a re-export).
CACHE_VERSION = 5
# Larger files are generated or vendored far more often than written by hand: not mapped.
MAX_FILE_BYTES = 1024 * 1024
# A build with this many files to parse parses them on every core (fewer are not worth starting workers for).
PARALLEL_FROM_FILES = 200
_CHUNK_FILES = 24
# Parsing workers run at this niceness: the server's own requests come first.
WORKER_NICENESS = 10
# A cache of 5,000 files is ~7 MB; one past this is not ours (a planted file): it is ignored and rebuilt.
_MAX_CACHE_BYTES = 256 * 1024 * 1024

Progress = Callable[[int, int], None]
# In a worker process: set when the build it parses for is abandoned.
_stop: Stop | None = None


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
        self.generation = 0
        """Grows with every change to `tags`: what a rendered map is cached by."""
        self._read: dict[str, FileTags] = {}
        """What `build` has read so far."""
        self._reading = threading.Lock()
        self._abandoned = False
        self._stop_workers: Stop | None = None
        self.to_parse = 0
        """How many files the running `build` parses (the others come from the cache)."""

    def build(
        self, progress: Progress | None = None, order: Callable[[list[str]], list[str]] | None = None
    ) -> BuildStats:
        """Index every source file; files unchanged since the cache was written are not parsed, the others are
        parsed in `order`. `progress` hears of every chunk of files read."""
        cached = self._load_cache()
        names = [name for name in self._list_files() if grammar_for(name) is not None]
        tags: dict[str, FileTags] = {}
        to_parse: list[str] = []
        for name in names:
            info = self._stat(name)
            if info is None:
                continue
            hit = cached.get(name)
            if hit is not None and (hit.mtime_ns, hit.size) == info:
                tags[name] = hit
            else:
                to_parse.append(name)
        with self._reading:
            self._read = tags
        if order is not None:
            to_parse = order(to_parse)
        self.to_parse = len(to_parse)
        parsed = 0
        with contextlib.closing(self._parse_all(to_parse)) as results:
            for done, (name, fresh) in enumerate(results, start=1):
                if self._abandoned:  # what it read is kept for the next start
                    self._write_cache(tags)
                    return BuildStats(len(tags), parsed, len(tags) - parsed)
                if fresh is not None:
                    with self._reading:
                        tags[name] = fresh
                    parsed += 1
                if progress is not None and (done % _CHUNK_FILES == 0 or done == len(to_parse)):
                    progress(len(names) - len(to_parse) + done, len(names))
        # In the listing's order, as a warm build has them: ties rank alike whichever order files were read in.
        self.tags = {name: tags[name] for name in names if name in tags}
        with self._reading:
            self._read = self.tags
        self.generation += 1
        self._dirty = parsed > 0 or len(tags) != len(cached)
        self.save()
        return BuildStats(len(tags), parsed, len(tags) - parsed)

    def read_so_far(self) -> dict[str, FileTags]:
        """While `build` runs: the files it has read (from the cache, then parsed in its order); all, after."""
        with self._reading:
            return dict(self._read)

    def abandon(self) -> None:
        """Make a running `build` stop at once, its workers too (their project is closing)."""
        self._abandoned = True
        if self._stop_workers is not None:
            self._stop_workers.set()

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
            _, fresh = next(self._parse_all([name]))
            if fresh is None:
                changed |= self.tags.pop(name, None) is not None
            else:
                self.tags[name] = fresh
                changed = True
        self._dirty |= changed
        self.generation += changed
        return changed

    def save(self) -> None:
        """Write the cache (atomically) when it changed; the next start is then warm."""
        if not self._dirty:
            return
        self._write_cache(self.tags)
        self._dirty = False

    def _write_cache(self, tags: dict[str, FileTags]) -> None:
        self._cache_path.parent.mkdir(parents=True, exist_ok=True)
        files = {name: [entry.mtime_ns, entry.size, entry.encoded()] for name, entry in tags.items()}
        payload = {"version": CACHE_VERSION, "files": files}
        atomic_write(self._cache_path, json.dumps(payload, separators=(",", ":")).encode())

    def _load_cache(self) -> dict[str, FileTags]:
        """The cached tags; none when the cache is missing, of another version, or not what we write (the
        project's `.loomkin/` may hold anything: a FIFO, a link to /dev/zero, JSON of another shape)."""
        try:
            found = read_own_file(self._cache_path, self._cache_path.parent, _MAX_CACHE_BYTES)
            if found is None or found.truncated:
                return {}
            payload = json.loads(found.data)
            if payload.get("version") != CACHE_VERSION:
                return {}
            root = str(self.root)
            return {
                str(name): FileTags.stored(int(stamp), int(size), str(encoded), partial(_parse_again, root, str(name)))
                for name, (stamp, size, encoded) in payload["files"].items()
            }
        except (OwnFileRefused, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            return {}

    def _stat(self, name: str) -> tuple[int, int] | None:
        try:
            info = os.stat(self.root / name)
        except OSError:
            return None
        if info.st_size > MAX_FILE_BYTES:
            return None
        return info.st_mtime_ns, info.st_size

    def _parse_all(self, names: list[str]) -> Iterator[tuple[str, FileTags | None]]:
        """Each file's tags, in order (names interned, whichever process parsed them)."""
        for name, fresh in self._parsed(names):
            yield name, None if fresh is None else fresh.interned()

    def _parsed(self, names: list[str]) -> Iterator[tuple[str, FileTags | None]]:
        """In worker processes on every core when there are many files, else here."""
        workers = min(os.cpu_count() or 1, 8)
        done = 0
        if workers > 1 and len(names) >= PARALLEL_FROM_FILES:
            import multiprocessing

            self._stop_workers = multiprocessing.get_context("spawn").Event()
            if self._abandoned:
                self._stop_workers.set()
            try:
                for item in _parse_in_workers(str(self.root), names, workers, self._stop_workers):
                    done += 1
                    yield item
                return
            except (OSError, RuntimeError) as exc:  # (BrokenProcessPool is a RuntimeError)
                logger.warning("the repo map parses on one core: worker processes could not run (%s)", exc)
        for start in range(done, len(names), _CHUNK_FILES):  # (on from where the workers stopped)
            yield from parse_files(str(self.root), names[start : start + _CHUNK_FILES])


def _parse_in_workers(root: str, names: list[str], workers: int, stop: Stop) -> Iterator[tuple[str, FileTags | None]]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [names[start : start + _CHUNK_FILES] for start in range(0, len(names), _CHUNK_FILES)]
    # spawn, not fork: the server has threads (a forked copy of a held lock would never be released).
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(), stop))
    try:
        for chunk in pool.map(parse_files, [root] * len(chunks), chunks):
            yield from chunk
    finally:
        # A build stopped early does not wait for the chunks nobody will read.
        pool.shutdown(wait=True, cancel_futures=True)


def _parse_again(root: str, name: str) -> FileTags | None:
    """A file's tags parsed anew (its cached entry did not decode)."""
    fresh = parse_files(root, [name])[0][1]
    return None if fresh is None else fresh.interned()


def _start_worker(parent: int, stop: Stop) -> None:
    """A worker dies with the server (even by `kill -9`), stops parsing when `stop` is set, yields the CPU to the
    server (a map or another call asked for meanwhile is not slowed down by the indexing behind it), and writes
    nothing to stdout: it is the server's, which with stdio transport carries the protocol."""
    global _stop
    die_with_parent()
    if os.getppid() != parent:  # (the server died before that took hold)
        os._exit(0)
    os.nice(WORKER_NICENESS)
    _stop = stop
    os.dup2(2, 1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)


def parse_files(root: str, names: list[str]) -> list[tuple[str, FileTags | None]]:
    """The tags of each of `names` (relative to `root`), None for a file that cannot be read or parsed.

    Files are opened beneath the root by descriptor, never through a link, and at most MAX_FILE_BYTES are read.
    """
    root_fd = open_root(Path(root))
    try:
        found = []
        for name in names:
            if _stop is not None and _stop.is_set():  # the build was abandoned: the rest is not read
                return found + [(rest, None) for rest in names[len(found) :]]
            found.append((name, _parse_one(root_fd, name)))
        return found
    finally:
        os.close(root_fd)


def _parse_one(root_fd: int, name: str) -> FileTags | None:
    try:
        fd = open_file_beneath(root_fd, tuple(name.split("/")), os.O_RDONLY)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FILE_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            source = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return extract(name, source, info.st_mtime_ns, info.st_size)
    except Exception:  # noqa: BLE001 - one unparsable file must not stop the map
        logger.debug("could not index %s", name, exc_info=True)
        return None
