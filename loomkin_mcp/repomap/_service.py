"""The repo map service: build on first use (in a worker thread), keep fresh, rank for the caller.

The index lives in memory, with its tags cached in `.loomkin/repomap/` so a restart is warm.
The first map asked for while the first index is read waits for it at most FIRST_MAP_SECONDS, then
comes from the files read so far (they are read in `reading_order`); the reading goes on, the next
map waits for it, and when it ends subscribers of `loomkin://repo-map` are told.
With `[repo].watch_enabled` a watchfiles task updates it file by file, tells subscribers of
`loomkin://repo-map`, and tells the language servers what changed on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import subprocess
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import anyio

from .._errors import ToolInputError
from .._fs import open_file_beneath
from ..git._service import run_git
from ..lsp._service import LspService
from ..sandbox._service import Sandbox
from ..search._service import SearchService
from ..workspace import Workspace

if TYPE_CHECKING:
    from . import FileTags, RankEngine, RepoIndex, SourceLines
    from ._saved_graph import SavedGraph

logger = logging.getLogger("loomkin_mcp.repomap")

CACHE_FILE = Path("repomap") / "tags.json"  # under the workspace's state dir
GRAPH_FILE = Path("repomap") / "graph.bin"
RECENT_FILES = 20
RENDERED_MAPS_KEPT = 16
FILE_LINES_KEPT = 256
# A file's lines shown in the map, or read for its exports, come from its first megabytes only.
MAX_SOURCE_BYTES = 4 * 1024 * 1024
# How much of the last map the status page shows.
STATUS_MAP_LINES = 25
# The history read for files changed with the focus files, and how long it is reused.
HISTORY_COMMITS = 500
HISTORY_FRESH_SECONDS = 30.0
# Focus weight in the personalisation; the files changed with them draw half as much, together.
FOCUS_WEIGHT = 10.0
CO_CHANGED_SHARE = 0.5
# How long a map waits for a first index before it is made from the files read so far; ranking those takes ~0.2 s
# more, so a first map answers about a second after it is asked (`LOOMKIN_FIRST_MAP_MS` overrides the wait; 0 waits
# for the whole index). Only an index with this many files to parse can take that long.
FIRST_MAP_SECONDS = 0.8
FIRST_MAP_FROM_FILES = 200
# Progress is told to the caller every this many files read.
PROGRESS_EVERY_FILES = 200
ProgressReport = Callable[[float, float | None, str | None], Awaitable[None]]


class RepoMapService:
    def __init__(self, workspace: Workspace, search: SearchService, lsp: LspService, sandbox: Sandbox) -> None:
        self._ws = workspace
        self._search = search
        self._lsp = lsp
        self._sandbox = sandbox
        self._history: tuple[float, list[list[str]]] | None = None
        """(when read, each recent commit's files): which files change together."""
        self._index: RepoIndex | None = None
        self._indexing: asyncio.Task[RepoIndex] | None = None
        """The first index being read, in the background: it goes on when the call that started it returns."""
        self._being_read: RepoIndex | None = None
        self._files_read: tuple[int, int] = (0, 0)
        """(files read, files to read) of the index being read."""
        self._more_read = asyncio.Event()
        """Set (and replaced) whenever more files of the index being read are in."""
        self._first_maps_given = False
        self._saved_graph: asyncio.Task[SavedGraph | None] | None = None
        self._recent: deque[str] = deque(maxlen=RECENT_FILES)
        self._listeners: list[Callable[[], None]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._stop_watching = anyio.Event()
        self._engine: RankEngine | None = None
        """The reference graph between maps: after a change only the touched edges are rebuilt."""
        self._ranking = threading.RLock()
        """One ranking (or save) at a time: the engine is updated in place."""
        self._graph_on_disk: tuple[int, bool] | None = None
        """(index generation, whether the public surface is in it) of the graph saved or restored."""
        self._trimmed_generation = -1
        """The index generation after whose first ranking freed memory was last handed back."""
        self._language_counts: tuple[tuple[object, ...], dict[str, int]] | None = None
        self._rendered: OrderedDict[tuple[object, ...], str] = OrderedDict()
        """Maps already rendered, by index generation and request: an unchanged repeated call costs a lookup."""
        self._file_lines: dict[str, tuple[tuple[int, int], SourceLines]] = {}
        """Lines of the files maps show, by (mtime, size)."""
        self._public_surface: tuple[int, Mapping[str, frozenset[str]]] | None = None
        self._manifests: dict[str, list[int] | None] = {}
        """The files besides the indexed ones the public surface was read from (package.json), by stamp."""
        self.last_map: str | None = None
        """The last map rendered (the status page shows its top)."""
        self.last_change_at: float | None = None
        """When the watcher last applied a change (monotonic), for tests and benchmarks."""

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def note(self, path: Path) -> None:
        """A file the model read or edited: the map leans towards it."""
        relative = self._ws.relative(path)
        with contextlib.suppress(ValueError):
            self._recent.remove(relative)
        self._recent.append(relative)

    # -- building and watching ------------------------------------------------------------

    async def index(self, progress: ProgressReport | None = None) -> RepoIndex:
        """The whole index, read on first use (from the disk cache, parsing what changed)."""
        if self._index is not None:
            return self._index
        index = await self._index_within(None, (), progress)
        assert not isinstance(index, FirstRead)
        return index

    async def _index_within(
        self, seconds: float | None, preferred: tuple[str, ...], progress: ProgressReport | None
    ) -> RepoIndex | FirstRead:
        """The whole index, waited for at most `seconds` (None: until it is read), else the files read by then.
        The first call starts the reading (`preferred` files first), which goes on without it."""
        if self._index is not None:
            return self._index
        if self._indexing is None:
            self._start_indexing(preferred)
        task = self._indexing
        assert task is not None
        deadline = None if seconds is None else time.monotonic() + seconds
        told = 0
        while not task.done():
            left = None if deadline is None else deadline - time.monotonic()
            being_read = self._being_read
            if left is not None and left <= 0 and being_read is not None:
                if being_read.to_parse >= FIRST_MAP_FROM_FILES and self._files_read[0] > 0:
                    first = FirstRead(being_read.read_so_far(), self._files_read[1])
                    if not being_read.tags:  # (else it has just ended: the whole index is a moment away)
                        return first
                left = None
            more = asyncio.ensure_future(self._more_read.wait())
            try:
                await asyncio.wait({task, more}, timeout=left if left is None or left > 0 else None,
                                   return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
            finally:
                more.cancel()
            done, total = self._files_read
            if (
                progress is not None
                and done > told
                and (not told or done - told >= PROGRESS_EVERY_FILES or done == total)
            ):
                told = done
                with contextlib.suppress(Exception):
                    await progress(float(done), float(total), f"indexed {done} of {total} files")
        return task.result()

    def _start_indexing(self, preferred: tuple[str, ...]) -> None:
        from . import RepoIndex
        from ._public import reading_order

        index = RepoIndex(self._ws.root, self._ws.state_file(*CACHE_FILE.parts), self._search.list_source_files)
        if self._engine is None:  # read meanwhile, on the other core while the listing waits for ripgrep
            from ._saved_graph import load_graph

            saved_at = self._ws.state_file(*GRAPH_FILE.parts)  # (something planted there is said here)
            self._saved_graph = asyncio.ensure_future(anyio.to_thread.run_sync(load_graph, saved_at))
        loop = asyncio.get_running_loop()

        def read(done: int, total: int) -> None:
            loop.call_soon_threadsafe(self._read_more, done, total)

        async def build() -> RepoIndex:
            started = time.monotonic()
            order = partial(reading_order, preferred=frozenset(preferred) | frozenset(self._recent))
            try:
                stats = await anyio.to_thread.run_sync(partial(index.build, read, order))
            except BaseException:
                self._indexing = None  # the next call tries again
                raise
            finally:
                self._being_read = None
            logger.info(
                "repo map: %d files indexed in %.1f s (%d parsed, %d from cache)",
                stats.files, time.monotonic() - started, stats.parsed, stats.from_cache,
            )  # fmt: skip
            if self._stop_watching.is_set():  # the project closed while it was read
                return index
            self._index = index
            if self._ws.config.repo.watch_enabled and self._watcher is None:
                self._watcher = asyncio.ensure_future(self._watch())
            if self._first_maps_given:  # those who saw a first map can now have the whole one
                for listener in self._listeners:
                    listener()
            return index

        self._being_read, self._files_read = index, (0, 0)
        self._indexing = asyncio.ensure_future(build())

    def _read_more(self, done: int, total: int) -> None:
        self._files_read = (done, total)
        self._more_read.set()
        self._more_read = asyncio.Event()

    async def _watch(self) -> None:
        import watchfiles

        assert self._index is not None
        index = self._index
        root = self._ws.root
        try:
            async for changes in watchfiles.awatch(root, stop_event=self._stop_watching, debounce=10, step=5):
                names = {}
                for change, raw in changes:
                    path = Path(raw)
                    if not path.is_relative_to(root):
                        continue
                    relative = path.relative_to(root).as_posix()
                    if relative.startswith((".git/", ".loomkin/")) or self._ws.ignore.is_ignored(relative, False):
                        continue
                    names[relative] = change
                if not names:
                    continue
                changed = await anyio.to_thread.run_sync(index.update, list(names))
                self.last_change_at = time.monotonic()
                self._lsp.files_changed([(root / name, change.name.lower()) for name, change in names.items()])
                if changed:
                    for listener in self._listeners:
                        listener()
        except Exception:  # noqa: BLE001 - a dead watcher leaves a map that refreshes on demand
            logger.warning("the repo map stopped watching files; it refreshes on each request instead", exc_info=True)
            self._watcher = None

    async def refresh_if_not_watching(self, index: RepoIndex) -> None:
        if self._watcher is None:
            await anyio.to_thread.run_sync(index.update, list(self._search.list_source_files()) + list(index.tags))

    async def shutdown(self) -> None:
        self._stop_watching.set()
        if self._being_read is not None:
            self._being_read.abandon()
        if self._indexing is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._indexing)
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._watcher), 2)
            self._watcher.cancel()
        if self._index is not None:
            await anyio.to_thread.run_sync(self._index.save)
            await anyio.to_thread.run_sync(self._save_graph, self._index)

    def summary(self) -> dict[str, object]:
        """For the status page: what is indexed (nothing is built for it)."""
        index = self._index
        if index is None:
            done, total = self._files_read
            reading = {"indexing": f"{done} of {total} files read"} if self._being_read is not None and total else {}
            return {"indexed": False, "files": 0, "languages": {}, "watching": False} | reading
        languages = self._languages(index)
        last = None if self.last_change_at is None else round(time.monotonic() - self.last_change_at, 1)
        watching = self._watcher is not None
        top = self.last_map.splitlines()[:STATUS_MAP_LINES] if self.last_map else []
        return {"indexed": True, "files": len(index.tags), "languages": languages, "watching": watching,
                "seconds_since_last_change": last, "top": top}  # fmt: skip

    def _languages(self, index: RepoIndex) -> dict[str, int]:
        """Files per language, counted again only when the index changed (the status page asks 4 times a second)."""
        stamp = (id(index), len(index.tags), self.last_change_at)
        if self._language_counts is None or self._language_counts[0] != stamp:
            from . import grammar_for

            counts: dict[str, int] = {}
            for name in index.tags:
                grammar = grammar_for(name)
                if grammar is not None:
                    counts[grammar.name] = counts.get(grammar.name, 0) + 1
            self._language_counts = (stamp, counts)
        return self._language_counts[1]

    # -- the map --------------------------------------------------------------------------

    async def render(
        self,
        focus_files: list[str] | None = None,
        identifiers: list[str] | None = None,
        max_tokens: int | None = None,
        progress: ProgressReport | None = None,
        *,
        whole: bool = False,
    ) -> str:
        """The map; `whole`: never a first map from part of the files (a terminal's one-shot map waits)."""
        from . import RankEngine, estimate_tokens, release_freed_memory, render, render_limit

        budget = max_tokens if max_tokens is not None else self._ws.config.context.max_repo_map_tokens
        focus = [self._ws.relative(self._ws.resolve(path, what="focus_files entry")) for path in focus_files or []]
        # One first map: the next call waits for the whole index, as the first map's header says.
        wait = None if whole or self._first_maps_given else first_map_seconds()
        ready = await self._index_within(wait, tuple(focus), progress)
        if isinstance(ready, FirstRead):
            index, tags, saved = None, ready.tags, None
        else:
            index, tags, saved = ready, ready.tags, None
            if self._saved_graph is not None:  # read for the first whole map; not kept past it
                saved = await self._saved_graph if self._engine is None else None
                self._saved_graph = None
            await self.refresh_if_not_watching(index)
        focused = frozenset(path for path in focus if path in tags)
        personal = self._personalization(focus)
        if focused:
            from . import co_changed

            commits = await anyio.to_thread.run_sync(self._recent_commits)
            together = co_changed(commits, focused, tags)
            total = sum(together.values())
            for path, weight in together.items():
                share = weight / total * CO_CHANGED_SHARE * FOCUS_WEIGHT * len(focused)
                personal[path] = personal.get(path, 0.0) + share
        mentioned = frozenset(identifiers or [])

        key = (index.generation if index is not None else None, tuple(sorted(personal.items())), mentioned, budget)
        cached = self._rendered.get(key) if index is not None else None
        if cached is not None:
            self._rendered.move_to_end(key)
            self.last_map = cached
            return cached
        files = (
            f"{len(tags)} files"
            if index is not None
            else f"a first map from {len(tags)} of {ready.total} files, as they are still being indexed (the next "
            "call waits for the whole map)"  # type: ignore[union-attr]
        )

        def header(used: int) -> str:
            return (
                f"Repo map: {files}, ~{used} of {budget} tokens (chars / 4); a `dir/` line holds the files indented "
                "below it; name paths (`Class/method`) read and edit definitions with the symbol_* tools."
            )

        # The model has the focus files whole: a line each says so, and the budget goes to other files.
        focus_lines = "".join(
            f"{path}: in focus, {_definitions(tags[path])} not repeated\n" for path in sorted(focused)
        )
        # The budget covers all that is returned: the header, at its widest, comes off the map's share.
        map_budget = max(budget - estimate_tokens(header(budget) + "\n" + focus_lines), 1)

        # With no focus and no names asked for, the map leads with what the project offers its users (the files
        # read lately still weigh in the rest).
        leads_with_public = not focus and not mentioned
        limit = render_limit(map_budget)

        def build() -> str:
            if index is None:  # a first map: its own graph, of the files read so far
                public = self._surface_of(tags) if leads_with_public else None
                ranked = RankEngine().rank(tags, personal, mentioned, limit, focused, public)
            else:
                with self._ranking:
                    if self._engine is None:
                        self._engine = self._restored_engine(index, saved) or RankEngine()
                    public = self._public(index) if leads_with_public else None
                    ranked = self._engine.rank(tags, personal, mentioned, limit, focused, public)
                    if self._graph_on_disk is None:  # the first map of this process: the next one starts from it
                        self._save_graph(index)
                if self._trimmed_generation != index.generation:
                    # Indexing and a first ranking drop tens of MB of short-lived objects; ~1 ms to hand them back.
                    self._trimmed_generation = index.generation
                    release_freed_memory()
            return render(ranked, map_budget, self._source, lambda path: _definition_lines(tags.get(path)))

        text = await anyio.to_thread.run_sync(build)
        if not text and not focus_lines:
            return f"The repo map is empty: no source files in a language it reads ({files} indexed)."
        whole = f"{header(budget)}\n{focus_lines}{text}"
        self.last_map = f"{header(estimate_tokens(whole))}\n{focus_lines}{text}"
        if index is None:
            self._first_maps_given = True
            return self.last_map
        self._rendered[key] = self.last_map
        if len(self._rendered) > RENDERED_MAPS_KEPT:
            self._rendered.popitem(last=False)
        return self.last_map

    def _recent_commits(self) -> list[list[str]]:
        """The files of the project's recent commits (none outside git), read again after HISTORY_FRESH_SECONDS.

        git runs as the git tool runs it: no program the repository names, sandboxed where trusted to."""
        from . import commits_of_log

        now = time.monotonic()
        if self._history is not None and now - self._history[0] < HISTORY_FRESH_SECONDS:
            return self._history[1]
        args = [
            "log",
            "--no-merges",
            "--no-renames",
            "--relative",
            f"-n{HISTORY_COMMITS}",
            "--format=%x00",
            "--name-only",
        ]
        try:
            done = run_git(self._ws, args, 10, self._sandbox)
            log = done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else ""
        except (OSError, subprocess.TimeoutExpired, ToolInputError):
            log = ""
        self._history = (now, commits_of_log(log))
        return self._history[1]

    def _personalization(self, focus: list[str]) -> dict[str, float]:
        weights: dict[str, float] = {}
        for path in focus:
            weights[path] = weights.get(path, 0.0) + FOCUS_WEIGHT
        for path in self._recent:
            weights[path] = weights.get(path, 0.0) + 3.0
        for path in self._lsp.files_with_diagnostics():
            weights[path] = weights.get(path, 0.0) + 2.0
        return weights

    def _source(self, relative: str) -> SourceLines:
        """A file's lines for rendering (and the blocks they open), read again only when it changed (a render
        shows lines of a few dozen)."""
        from . import SourceLines

        cached = self._file_lines.get(relative)
        read = self._read(relative, MAX_SOURCE_BYTES, unless=cached[0] if cached is not None else None)
        if read is None:
            return SourceLines([])
        stamp, text = read
        if text is None:
            assert cached is not None
            return cached[1]
        source = SourceLines(text.split("\n"))
        self._file_lines[relative] = (stamp, source)
        if len(self._file_lines) > FILE_LINES_KEPT:
            del self._file_lines[next(iter(self._file_lines))]
        return source

    def _read(
        self, relative: str, limit: int, unless: tuple[int, int] | None = None
    ) -> tuple[tuple[int, int], str | None] | None:
        """((mtime_ns, size), text) of a project file opened beneath the root by descriptor (never through a
        link), at most `limit` bytes — the text None when the stamp is `unless` (what the caller holds is
        current); None when the file cannot be read."""
        try:
            fd = open_file_beneath(self._ws.root_fd, tuple(relative.split("/")), os.O_RDONLY)
        except (OSError, ValueError):
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None
            stamp = (info.st_mtime_ns, info.st_size)
            if stamp == unless:
                return stamp, None
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(limit)
        except OSError:
            return None
        finally:
            os.close(fd)
        return stamp, data.decode("utf-8", errors="replace")

    def _public(self, index: RepoIndex) -> Mapping[str, frozenset[str]]:
        """The project's public surface (repomap._public), worked out once per index generation."""
        if self._public_surface is None or self._public_surface[0] != index.generation:
            manifests: dict[str, list[int] | None] = {}
            self._public_surface = (index.generation, self._surface_of(index.tags, manifests))
            self._manifests = manifests
        return self._public_surface[1]

    def _surface_of(
        self, tags: Mapping[str, FileTags], manifests: dict[str, list[int] | None] | None = None
    ) -> dict[str, frozenset[str]]:
        """The public surface of these files; the stamps of the other files it read (package.json) go to
        `manifests`."""
        from . import public_surface

        def read(relative: str) -> str:
            found = self._read(relative, MAX_SOURCE_BYTES)
            if manifests is not None and relative not in tags:
                manifests[relative] = list(found[0]) if found is not None else None
            return (found[1] or "") if found is not None else ""

        return public_surface(tags, read)

    # -- the graph saved for the next process ------------------------------------------------

    def _restored_engine(self, index: RepoIndex, saved: SavedGraph | None) -> RankEngine | None:
        """The graph (and public surface) the last process saved, when it was built from these very tags and
        the manifests it read are unchanged."""
        from ._rank import RankEngine
        from ._saved_graph import tags_fingerprint

        if saved is None or saved.fingerprint != tags_fingerprint(index.tags):
            return None
        engine = RankEngine.restored(index.tags, saved.arrays)
        if engine is None:
            return None
        kept = saved.kept
        public, manifests = kept.get("public"), kept.get("manifests")
        with_public = isinstance(public, dict) and isinstance(manifests, dict) and self._manifests_unchanged(manifests)
        if with_public:
            assert isinstance(public, dict) and isinstance(manifests, dict)
            surface = {str(path): frozenset(map(str, names)) for path, names in public.items() if path in index.tags}
            self._public_surface, self._manifests = (index.generation, surface), manifests
        self._graph_on_disk = (index.generation, with_public)
        logger.info("repo map: the reference graph of the last run is used (%d files)", len(index.tags))
        return engine

    def _manifests_unchanged(self, manifests: dict[str, object]) -> bool:
        for relative, stamp in manifests.items():
            found = self._read(str(relative), 0)
            if (list(found[0]) if found is not None else None) != stamp:
                return False
        return True

    def _save_graph(self, index: RepoIndex) -> None:
        """Save the graph for the tags it is now in step with, unless what is on disk is already that."""
        from ._saved_graph import save_graph, tags_fingerprint

        with self._ranking:
            engine = self._engine
            if engine is None:
                return
            with_public = self._public_surface is not None and self._public_surface[0] == index.generation
            if self._graph_on_disk == (index.generation, with_public):
                return
            engine.sync(index.tags)
            state = engine.saved_state()
            if state is None:
                return
            kept: dict[str, object] = {}
            if with_public:
                assert self._public_surface is not None
                kept["public"] = {path: sorted(names) for path, names in self._public_surface[1].items()}
                kept["manifests"] = self._manifests
            try:
                save_graph(self._ws.state_file(*GRAPH_FILE.parts), tags_fingerprint(index.tags), state, kept)
            except (OSError, ToolInputError) as exc:  # (something planted there since the map began)
                logger.warning("the repo map's graph was not saved (%s); the next start rebuilds it", exc)
                self._graph_on_disk = (-1, False)  # tried: not again on every map
                return
            self._graph_on_disk = (index.generation, with_public)


class FirstRead(NamedTuple):
    """The files of a first index read so far, and how many it reads in all."""

    tags: dict[str, FileTags]
    total: int


def first_map_seconds() -> float | None:
    """FIRST_MAP_SECONDS, or `LOOMKIN_FIRST_MAP_MS`; None (0 ms) waits for the whole index."""
    try:
        seconds = float(os.environ["LOOMKIN_FIRST_MAP_MS"]) / 1000
    except (KeyError, ValueError):
        return FIRST_MAP_SECONDS
    return seconds if seconds > 0 else None


def _definition_lines(tags: FileTags | None) -> frozenset[int]:
    return frozenset(line for _, line, _ in tags.definitions) if tags is not None else frozenset()


def _definitions(tags: FileTags) -> str:
    count = len(tags.definitions)
    return "1 definition" if count == 1 else f"{count} definitions"
