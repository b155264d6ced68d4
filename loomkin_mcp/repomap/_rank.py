"""Rank files by PageRank over the reference graph, then fit their key definitions in a token budget.

A file that references a name another file defines gets an edge to it. Ranks are
personalised towards the files the caller cares about, and a definition's score is the rank
its referencing files pass to it, as in Aider's repo map. Tokens are estimated as
characters / 4 (Loomkin's own estimate; `_render` fits the ranked definitions in the budget).

`RankEngine` keeps the graph between calls: after a one-file change only the edges of that
file, and of the files that use the names it (un)defines, are rebuilt; PageRank and scoring
run vectorised (numpy) and start from the previous ranks.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, overload

from ..syntax import grammar_for
from ._tags import FileTags

if TYPE_CHECKING:
    import numpy as np

DAMPING = 0.85
MAX_ITERATIONS = 100
# L1 change of the whole rank vector (which sums to 1): far below what reorders definitions.
TOLERANCE = 1e-6
# A reference weighs by how distinctive its name is: split among the files that define it, so `get`
# defined in 11 files says a tenth of what a name defined once says; past _TOO_GENERIC definers, nothing.
_TOO_GENERIC = 25
_QUIET = 0.1
"""The weight of a `_private` name's reference."""
# The files that use what the focus files define rank high too (their callers and tests): together they
# draw this share of the focus files' own teleport weight.
_CALLERS_SHARE = 0.5
# Each further definition of one file counts for this fraction of the one before, so the map spreads over
# files (the model can read a file it sees named) instead of listing one file whole.
_SAME_FILE_DECAY = 0.3
# A test file is named after the file it tests: `role_test.exs`, `test_role.py`, `role.test.ts`, `role.spec.tsx`.
_TEST_NAME = re.compile(r"^(?:test_(?P<prefixed>.+)|(?P<suffixed>.+?)[._-](?:test|spec))$", re.IGNORECASE)
# How much a definition owes to its own file's rank: fully in the files the caller cares about,
# a little elsewhere (so unreferenced definitions still order sensibly).
_OWN_RANK_FOCUSED = 1.0
_OWN_RANK_OTHER = 1e-3
_MENTIONED_FACTOR = 10.0
_MENTIONED_BONUS = 1.0


# Edges stay within a family of languages: a TypeScript `join` is not a call of an Elixir `def join`.
@lru_cache(maxsize=64)
def _family_of_extension(extension: str) -> str:
    grammar = grammar_for(extension)
    return grammar.family if grammar else extension


def language_family(path: str) -> str:
    """The languages whose names can refer to each other, for a file (`javascript` for .ts and .tsx too)."""
    return _family_of_extension(path[path.rfind(".") :].lower() if "." in path else path)


def _best_spread(
    live: np.ndarray, rounded: np.ndarray, key_nodes: np.ndarray, key_lines: np.ndarray, limit: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The keys that can be among the best `limit` once spread over files (all when no limit), with their
    negated spread scores.

    Spreading only lowers a score, and a key's discount depends only on the better keys of its file, so it
    is computed for the best `candidates` raw scores, exactly; keys below them cannot beat the `limit`-th
    unless a raw score among the rest reaches it, and then the candidates double."""
    import numpy as np

    candidates = len(live) if limit is None else min(len(live), 4 * limit)
    while True:
        if candidates < len(live):
            top = np.argpartition(-rounded, candidates - 1)[:candidates]
            subset, raw = live[top], rounded[top]
        else:
            subset, raw = live, rounded
        negated = -_spread_over_files(raw, key_nodes[subset], key_lines[subset])
        if limit is None or len(subset) <= limit:
            return subset, negated
        threshold = np.partition(negated, limit - 1)[limit - 1]
        if candidates >= len(live) or -raw.min() > threshold:
            # Only the best `limit` keys can be shown: those (and any tied with the last of them).
            best = negated <= threshold
            return subset[best], negated[best]
        candidates = min(len(live), 2 * candidates)


def _spread_over_files(scores: np.ndarray, nodes: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Scores with each file's k-th best definition (ties: the earlier line) discounted by _SAME_FILE_DECAY ** k."""
    import numpy as np

    if len(scores) == 0:
        return scores
    order = np.lexsort((lines, -scores, nodes))
    ordered_nodes = nodes[order]
    starts = np.flatnonzero(np.r_[True, ordered_nodes[1:] != ordered_nodes[:-1]])
    place = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    spread = np.empty_like(scores)
    spread[order] = scores[order] * _SAME_FILE_DECAY**place
    return spread


def _shared_trailing_directories(first: str, second: str) -> int:
    count = 0
    for a, b in zip(reversed(first.split("/")[:-1]), reversed(second.split("/")[:-1]), strict=False):
        if a != b:
            break
        count += 1
    return count


def _referenced(file_tags: FileTags) -> set[str]:
    """Every name whose definers decide `file_tags`' edges: its references, and its calls through modules
    with those modules' full names."""
    names = set(file_tags.references)
    for module, uses in file_tags.qualified.items():
        names.add(module)
        names.update(uses)
    return names


@dataclass(frozen=True)
class Ranked:
    score: float
    path: str
    line: int
    name: str


@dataclass
class _Edges:
    """One source file's edges: to which definition (key), how heavily, and for which name (id)."""

    keys: np.ndarray
    weights: np.ndarray
    names: np.ndarray


@dataclass
class _Columns:
    """Per key: its file's node, its first line, whether it is defined now; grown in place by doubling."""

    node: np.ndarray
    line: np.ndarray
    defined: np.ndarray
    size: int

    @classmethod
    def of(cls, nodes: list[int], lines: list[int], definitions: list[list[int]]) -> _Columns:
        import numpy as np

        defined = np.fromiter((bool(found) for found in definitions), dtype=bool, count=len(definitions))
        return cls(np.asarray(nodes, dtype=np.int64), np.asarray(lines, dtype=np.int64), defined, len(nodes))

    def set(self, key: int, node: int, line: int, defined: bool) -> None:
        import numpy as np

        if key >= len(self.node):
            grown = max(2 * len(self.node), key + 1)
            self.node = np.resize(self.node, grown)
            self.line = np.resize(self.line, grown)
            self.defined = np.resize(self.defined, grown)
        self.node[key], self.line[key], self.defined[key] = node, line, defined
        self.size = max(self.size, key + 1)


# Past this many changed files the graph is rebuilt whole, vectorised, rather than file by file.
_BULK_FROM_FILES = 64


class RankEngine:
    def __init__(self) -> None:
        self._tags: dict[str, FileTags] = {}
        # Lists, not sets: most names have one definer, and a set costs 216 bytes where a list costs 64.
        self._definers: dict[str, list[str]] = defaultdict(list)
        # Who references each name: needed only to update file by file, so built on the first such update.
        self._referrers: dict[str, set[str]] | None = None
        self._edges: dict[str, _Edges] = {}
        # Stable integer ids: a file keeps its node id, a (file, name) definition its key id, a name its name id.
        self._node: dict[str, int] = {}
        self._key: dict[str, dict[str, int]] = {}
        """path -> name -> key (nested, not (path, name) tuples: a 5,000-file map holds ~200,000 keys)."""
        self._key_node: list[int] = []
        self._key_name: list[str] = []
        self._key_line: list[int] = []
        self._name_id: dict[str, int] = {}
        self._lines: list[list[int]] | _PackedLines = []
        """Each key's lines, in order (empty once its file no longer defines the name)."""
        self._packed: list[str] | None = None
        """When restored from a saved graph and not yet unpacked, the names by id: `_name_id`, `_key` and
        `_definers` are empty and `_lines` reads the saved arrays (what a map with no names asked for needs
        of them is found in the arrays; a change, or a name asked for, unpacks them)."""
        self._columns: _Columns | None = None
        """numpy copies of each key's node, first line and whether it is defined, kept in step with the lists."""
        self._path_order: np.ndarray | None = None
        self._ranks: np.ndarray | None = None
        self._python_index: dict[str, list[str]] | None = None
        self._tests: tuple[np.ndarray, np.ndarray] | None = None
        """(test file nodes, the nodes of the files they test), made again when files come or go."""
        self._modules_seen: dict[tuple[str, str, str], list[str] | None] = {}
        """Module resolutions, kept while no file comes or goes (and, for Elixir, no module changes)."""
        self._dunder_flags: np.ndarray | None = None
        self._python_roots: frozenset[str] = frozenset()
        """The first names of the project's absolute Python imports (with `_python_index`, made again when
        files come or go)."""

    def rank(
        self,
        tags: Mapping[str, FileTags],
        personal: Mapping[str, float],
        mentioned: frozenset[str],
        limit: int | None = None,
        focus: frozenset[str] = frozenset(),
        public: Mapping[str, frozenset[str]] | None = None,
    ) -> list[Ranked]:
        """Definitions, best first (only the best `limit` when given).

        `personal` weighs files the caller cares about; `focus` files are ones the model has whole: their
        definitions are left out, and the files that use their distinctive names rank high. `public` (per
        file, the names of the project's public surface) come first, in their own order, then the rest."""
        import numpy as np

        self._sync(tags)
        if mentioned:
            self._unpack()
        paths = list(self._node)
        count = len(paths)
        if count == 0:
            return []
        alive = np.zeros(count, dtype=bool)
        alive[[self._node[path] for path in tags]] = True

        sources, keys, weights = self._edge_arrays(mentioned)
        columns = self._current_columns()
        key_nodes, key_lines = columns.node[: columns.size], columns.line[: columns.size]
        edge_targets = key_nodes[keys] if len(keys) else keys
        in_focus = np.zeros(count, dtype=bool)
        in_focus[[self._node[path] for path in focus if path in self._node]] = True
        teleport = self._teleport(personal, in_focus, sources, edge_targets, weights) * alive
        outgoing = np.bincount(sources, weights=weights, minlength=count)
        ranks = self._pagerank(alive, teleport, sources, edge_targets, weights, outgoing)

        share = np.divide(ranks, outgoing, out=np.zeros(count), where=outgoing > 0)
        scores = np.bincount(keys, weights=share[sources] * weights, minlength=columns.size)
        own = ranks[key_nodes] * np.where(teleport[key_nodes] > 0, _OWN_RANK_FOCUSED, _OWN_RANK_OTHER)
        scores = scores + own
        self._score_tests_as_their_subjects(scores, teleport, key_nodes, key_lines, columns.defined[: columns.size])
        for name in mentioned:
            definers = self._definers.get(name, ())
            for path in definers:
                scores[self._key[path][name]] += _MENTIONED_BONUS / len(definers)
        # A class's special methods (`__init__`, `__eq__`…) say little of it: they rank below its other names.
        scores[self._dunders(columns.size)] *= _QUIET
        live = np.flatnonzero(alive[key_nodes] & ~in_focus[key_nodes] & columns.defined[: columns.size])
        if len(live) == 0:
            return []
        in_public = np.zeros(columns.size, dtype=bool)
        for path, names in (public or {}).items():
            keys_of = self._keys_of(path)
            in_public[[keys_of[name] for name in names if name in keys_of]] = True
        path_order = self._order_of_paths()
        tiers = []
        for tier in (live[in_public[live]], live[~in_public[live]]):
            if len(tier) == 0:
                continue
            # Ordered on scores rounded to single precision: sums taken in another order (files parsed in
            # another order, a graph updated rather than rebuilt) differ in the last bits, and a tie must stay
            # a tie so the same project always gives the same map.
            tier, negated = _best_spread(tier, scores[tier].astype(np.float32), key_nodes, key_lines, limit)
            # Best score first; ties go to the earlier path, then the earlier line, whatever the ids.
            tiers.append(tier[np.lexsort((key_lines[tier], path_order[key_nodes[tier]], negated))])
        order = np.concatenate(tiers)
        if limit is not None:
            order = order[:limit]
        result: list[Ranked] = []
        names = self._key_name
        for key in order.tolist():
            path = paths[self._key_node[key]]
            for line in self._lines[key]:
                result.append(Ranked(float(scores[key]), path, line, names[key]))
                if limit is not None and len(result) >= limit:
                    return result
        return result

    def _score_tests_as_their_subjects(
        self,
        scores: np.ndarray,
        teleport: np.ndarray,
        key_nodes: np.ndarray,
        lines: np.ndarray,
        defined: np.ndarray,
    ) -> None:
        """The test of each file the caller cares about scores as that file's best definition does (a change to
        a file usually changes its test, which no name of the file's leads to)."""
        import numpy as np

        tests, subjects = self._test_pairs()
        cared = teleport[subjects] > 0
        if not cared.any():
            return
        tests, subjects = tests[cared], subjects[cared]
        best = np.zeros(len(teleport))
        np.maximum.at(best, key_nodes[defined], scores[defined])
        floor = np.zeros(len(teleport))
        np.maximum.at(floor, tests, best[subjects])
        # One definition of the test (its first) is enough to name the file.
        keys = np.flatnonzero(defined & (floor[key_nodes] > 0))
        if len(keys) == 0:
            return
        keys = keys[np.lexsort((lines[keys], key_nodes[keys]))]
        first = keys[np.r_[True, key_nodes[keys][1:] != key_nodes[keys][:-1]]]
        scores[first] = np.maximum(scores[first], floor[key_nodes[first]])

    def _test_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Each test file and the file it tests: the same stem, and of the candidates in its language family
        the ones sharing most trailing directories (`test/app/teams/role_test.exs` tests
        `lib/app/teams/role.ex`)."""
        import numpy as np

        if self._tests is None:
            by_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
            tested: list[tuple[str, tuple[str, str]]] = []
            for path in self._tags:
                stem = posixpath.basename(path).rsplit(".", 1)[0]
                match = _TEST_NAME.match(stem)
                subject = match["prefixed"] or match["suffixed"] if match else stem
                family_and_stem = (language_family(path), subject.lstrip("_").lower())
                if match:
                    tested.append((path, family_and_stem))
                else:
                    by_stem[family_and_stem].append(path)
            pairs: list[tuple[int, int]] = []
            for path, family_and_stem in tested:
                candidates = by_stem.get(family_and_stem, [])
                if not candidates:
                    continue
                shared = [_shared_trailing_directories(path, candidate) for candidate in candidates]
                most = max(shared)
                pairs += [
                    (self._node[path], self._node[c]) for c, n in zip(candidates, shared, strict=True) if n == most
                ]
            array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
            self._tests = (array[:, 0], array[:, 1])
        return self._tests

    def _teleport(
        self,
        personal: Mapping[str, float],
        in_focus: np.ndarray,
        sources: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray,
    ) -> np.ndarray:
        """Where a random walk restarts: the files the caller cares about, and the files that use the focus
        files' names, by how much (edge weights already favour distinctive names)."""
        import numpy as np

        teleport = np.zeros(len(in_focus))
        for path, weight in personal.items():
            if path in self._node:
                teleport[self._node[path]] += weight
        into_focus = in_focus[targets] & ~in_focus[sources] if len(targets) else np.zeros(0, dtype=bool)
        if into_focus.any():
            callers = np.bincount(sources[into_focus], weights=weights[into_focus], minlength=len(in_focus))
            focus_weight = teleport[in_focus].sum()
            teleport += callers / callers.sum() * _CALLERS_SHARE * focus_weight
        return teleport

    def _dunders(self, size: int) -> np.ndarray:
        """Whether each key names a special method (`__init__`): grown with the keys, names never change."""
        import numpy as np

        known = self._dunder_flags
        if known is None or len(known) < size:
            names = self._key_name
            start = 0 if known is None else len(known)
            fresh = np.fromiter(
                (len(name) > 4 and name.startswith("__") and name.endswith("__") for name in names[start:size]),
                dtype=bool,
                count=size - start,
            )
            known = fresh if known is None else np.concatenate([known, fresh])
            self._dunder_flags = known
        return known[:size]

    def _current_columns(self) -> _Columns:
        if self._columns is None:
            self._columns = _Columns.of(self._key_node, self._key_line, self._lines)
        return self._columns

    def _order_of_paths(self) -> np.ndarray:
        """Each node's place in path order (paths only ever gain nodes, so it is kept until one is added)."""
        import numpy as np

        count = len(self._node)
        if self._path_order is None or len(self._path_order) != count:
            self._path_order = np.empty(count, dtype=np.int64)
            self._path_order[[self._node[path] for path in sorted(self._node)]] = np.arange(count)
        return self._path_order

    # -- the graph saved between processes --------------------------------------------------

    def sync(self, tags: Mapping[str, FileTags]) -> None:
        """Bring the graph in step with `tags` now (before saving it), rather than at the next ranking."""
        self._sync(tags)

    def saved_state(self) -> dict[str, np.ndarray] | None:
        """The graph as flat arrays, for a new process to `restored` instead of rebuilding it; None when a
        name holds NUL, which the stored form uses between names."""
        import numpy as np

        self._unpack()
        paths, names = list(self._node), list(self._name_id)
        if any("\0" in name for name in names):
            return None
        edge_files = list(self._edges)
        return {
            "paths": np.frombuffer("\0".join(paths).encode(), dtype=np.uint8),
            "names": np.frombuffer("\0".join(names).encode(), dtype=np.uint8),
            "key_node": np.asarray(self._key_node, dtype=np.int64),
            "key_name": np.asarray([self._name_id[name] for name in self._key_name], dtype=np.int64),
            "key_line": np.asarray(self._key_line, dtype=np.int64),
            "key_dunder": self._dunders(len(self._key_node)).astype(np.uint8),
            "line_ends": np.cumsum([len(lines) for lines in self._lines], dtype=np.int64),
            "lines": np.fromiter(chain.from_iterable(self._lines), dtype=np.int64),
            "edge_files": np.asarray([self._node[path] for path in edge_files], dtype=np.int64),
            "edge_counts": np.asarray([len(self._edges[path].keys) for path in edge_files], dtype=np.int64),
            "edge_keys": _joined([self._edges[path].keys for path in edge_files], np.int64),
            "edge_weights": _joined([self._edges[path].weights for path in edge_files], np.float64),
            "edge_names": _joined([self._edges[path].names for path in edge_files], np.int64),
        }

    @classmethod
    def restored(cls, tags: Mapping[str, FileTags], state: Mapping[str, np.ndarray]) -> RankEngine | None:
        """The engine `saved_state` described, for `tags` (the caller has matched their fingerprint); None
        when the arrays do not hold together. The saved file sits in the project, which may hold anything:
        every index is checked, so a forged graph can mislead the map (as forged tags or code can) but not
        fail or stall it."""
        import numpy as np

        try:
            paths = bytes(state["paths"]).decode().split("\0")
            names = bytes(state["names"]).decode().split("\0")
            key_node, key_name, key_line = state["key_node"], state["key_name"], state["key_line"]
            key_dunder = state["key_dunder"]
            line_ends, lines = state["line_ends"], state["lines"]
            edge_files, edge_counts = state["edge_files"], state["edge_counts"]
            edge_keys, edge_weights, edge_names = state["edge_keys"], state["edge_weights"], state["edge_names"]
        except (KeyError, UnicodeDecodeError):
            return None
        keys = len(key_node)
        if not (
            len(set(paths)) == len(paths) >= len(tags)
            and len(set(names)) == len(names)
            and len(key_name) == len(key_line) == len(key_dunder) == len(line_ends) == keys
            and _within(key_node, len(paths))
            and _within(key_name, len(names))
            and (keys == 0 or (np.all(np.diff(line_ends) >= 0) and line_ends[0] >= 0 and line_ends[-1] == len(lines)))
            and len(edge_files) == len(edge_counts)
            and _within(edge_files, len(paths))
            and len(np.unique(edge_files)) == len(edge_files)
            and np.all(edge_counts >= 0)
            and int(edge_counts.sum()) == len(edge_keys) == len(edge_weights) == len(edge_names)
            and _within(edge_keys, keys)
            and _within(edge_names, len(names))
            and np.all(np.isfinite(edge_weights))
        ):
            return None
        engine = cls()
        engine._node = {path: node for node, path in enumerate(paths)}
        if not all(path in engine._node for path in tags):
            return None
        engine._tags = dict(tags)
        engine._key_node = key_node.tolist()
        engine._key_name = [names[number] for number in key_name.tolist()]
        engine._key_line = key_line.tolist()
        engine._lines = _PackedLines(lines.tolist(), line_ends.tolist())
        engine._packed = names
        engine._dunder_flags = key_dunder.astype(bool)
        ends_of_edges = np.cumsum(edge_counts)
        for node, end, count in zip(edge_files.tolist(), ends_of_edges.tolist(), edge_counts.tolist(), strict=True):
            part = slice(end - count, end)
            engine._edges[paths[node]] = _Edges(edge_keys[part], edge_weights[part], edge_names[part])
        defined = np.diff(line_ends, prepend=0) > 0
        engine._columns = _Columns(key_node.copy(), key_line.copy(), defined, keys)
        return engine

    def _unpack(self) -> None:
        """Make the name and line lookups a restored graph left in its arrays (before changing the graph)."""
        names = self._packed
        if names is None:
            return
        self._packed = None
        self._name_id = {name: number for number, name in enumerate(names)}
        self._lines = list(self._lines)
        paths = list(self._node)
        for key, (node, name) in enumerate(zip(self._key_node, self._key_name, strict=True)):
            self._key.setdefault(paths[node], {})[name] = key
            if self._lines[key]:
                self._definers[name].append(paths[node])

    def _keys_of(self, path: str) -> Mapping[str, int]:
        """The keys of `path`'s definitions by name (found in the arrays while the graph is packed)."""
        if self._packed is None:
            return self._key.get(path, {})
        import numpy as np

        node = self._node.get(path)
        if node is None or self._columns is None:
            return {}
        found = np.flatnonzero(self._columns.node[: self._columns.size] == node).tolist()
        return {self._key_name[key]: key for key in found}

    # -- keeping the graph in step with the tags ------------------------------------------

    def _sync(self, tags: Mapping[str, FileTags]) -> None:
        changed = {path for path, file_tags in tags.items() if self._tags.get(path) is not file_tags}
        changed |= self._tags.keys() - tags.keys()
        if not changed:
            return
        self._unpack()
        if tags.keys() != self._tags.keys():
            self._python_index = None
            self._tests = None
        # An Elixir module resolves to the files defining it: any change of definitions may move it.
        self._modules_seen.clear()
        if len(changed) >= _BULK_FROM_FILES:
            self._rebuild(tags)
            return
        referrers = self._referrers_by_name()
        affected: set[str] = set()
        for path in changed:
            old, new = self._tags.get(path), tags.get(path)
            old_defs = {name for name, _, _ in old.definitions} if old else set()
            new_defs = {name for name, _, _ in new.definitions} if new else set()
            for name in old_defs - new_defs:
                self._definers[name].remove(path)
            for name in new_defs - old_defs:
                self._definers[name].append(path)
            affected |= old_defs ^ new_defs
            old_refs = _referenced(old) if old else set()
            new_refs = _referenced(new) if new else set()
            for name in old_refs - new_refs:
                referrers[name].discard(path)
            for name in new_refs - old_refs:
                referrers[name].add(path)
            self._index_definitions(path, old, new)
        self._tags = dict(tags)
        # The edges of a file change with its own references, or when a name it uses gains or loses a definer.
        rebuild = set(changed)
        for name in affected:
            rebuild |= referrers.get(name, set())
        for path in rebuild:
            file_tags = self._tags.get(path)
            if file_tags is None:
                self._edges.pop(path, None)
            else:
                self._edges[path] = self._edges_of(path, file_tags)

    def _referrers_by_name(self) -> dict[str, set[str]]:
        if self._referrers is None:
            self._referrers = defaultdict(set)
            for path, file_tags in self._tags.items():
                for name in _referenced(file_tags):
                    self._referrers[name].add(path)
        return self._referrers

    def _rebuild(self, tags: Mapping[str, FileTags]) -> None:
        """The whole graph from `tags`, its edges computed with array operations (what a first map costs)."""
        import numpy as np

        self.__init__()  # type: ignore[misc]
        self._tags = dict(tags)
        keys, key_node, key_name, lines = self._key, self._key_node, self._key_name, self._lines
        name_ids, definers = self._name_id, self._definers
        for node, (path, file_tags) in enumerate(self._tags.items()):
            self._node[path] = node
            file_keys = keys.setdefault(path, {})
            for name, line, _ in file_tags.definitions:
                key = file_keys.setdefault(name, len(key_node))
                if key == len(key_node):
                    key_node.append(node)
                    key_name.append(name)
                    lines.append([line])
                    name_ids.setdefault(name, len(name_ids))
                    definers[name].append(path)
                else:
                    lines[key].append(line)
        for numbers in lines:
            if len(numbers) > 1:
                numbers.sort()
        self._key_line = [numbers[0] for numbers in lines]
        # Definitions grouped by name: name id -> the keys defining it, as offsets into one array.
        key_names = np.asarray([self._name_id[name] for name in self._key_name], dtype=np.int64)
        by_name = np.argsort(key_names, kind="stable")
        definer_count = np.bincount(key_names, minlength=len(self._name_id))
        first = np.cumsum(definer_count) - definer_count
        quiet = np.asarray([name.startswith("_") for name in self._name_id], dtype=bool)
        # Every (file, referenced name defined somewhere) pair.
        sources: list[int] = []
        referenced: list[int] = []
        counts: list[int] = []
        get = self._name_id.get
        narrowed: list[tuple[int, int, float, int]] = []
        for path, file_tags in self._tags.items():
            node = self._node[path]
            ids = [get(name, -1) for name in file_tags.references]
            sources += [node] * len(ids)
            referenced += ids
            counts += file_tags.references.values()
            if file_tags.qualified:
                to_modules, loose = self._uses_through_modules(path, file_tags)
                narrowed += [(node, key, weight, name_id) for key, weight, name_id in to_modules]
                sources += [node] * len(loose)
                referenced += [get(name, -1) for name in loose]
                counts += loose.values()
        source = np.asarray(sources, dtype=np.int64)
        name = np.asarray(referenced, dtype=np.int64)
        count = np.asarray(counts, dtype=np.float64)
        known = name >= 0
        source, name, count = source[known], name[known], count[known]
        fan = definer_count[name]
        keep = (fan > 0) & (fan <= _TOO_GENERIC)
        source, name, count, fan = source[keep], name[keep], count[keep], fan[keep]
        weight = np.sqrt(count) * np.where(quiet[name], _QUIET, 1.0) / fan
        # One edge per definer of the name: repeat each pair by its name's definers, then index into them.
        edge_source = np.repeat(source, fan)
        edge_name = np.repeat(name, fan)
        edge_weight = np.repeat(weight, fan)
        within = np.arange(len(edge_source)) - np.repeat(np.cumsum(fan) - fan, fan)
        edge_key = by_name[first[edge_name] + within]
        columns = self._columns = _Columns.of(self._key_node, self._key_line, self._lines)
        family_ids: dict[str, int] = {}
        family = np.asarray(
            [family_ids.setdefault(language_family(path), len(family_ids)) for path in self._node], dtype=np.int64
        )
        kept = (columns.node[edge_key] != edge_source) & (family[columns.node[edge_key]] == family[edge_source])
        edge_source, edge_name, edge_weight, edge_key = (
            edge_source[kept], edge_name[kept], edge_weight[kept], edge_key[kept]
        )  # fmt: skip
        if narrowed:
            more = np.asarray(narrowed, dtype=np.float64)
            edge_source = np.concatenate([edge_source, more[:, 0].astype(np.int64)])
            edge_key = np.concatenate([edge_key, more[:, 1].astype(np.int64)])
            edge_weight = np.concatenate([edge_weight, more[:, 2]])
            edge_name = np.concatenate([edge_name, more[:, 3].astype(np.int64)])
        order = np.argsort(edge_source, kind="stable")
        edge_source, edge_name, edge_weight, edge_key = (
            edge_source[order], edge_name[order], edge_weight[order], edge_key[order]
        )  # fmt: skip
        nodes, starts = np.unique(edge_source, return_index=True)
        ends = np.append(starts[1:], len(edge_source))
        paths = list(self._node)
        for node, start, end in zip(nodes.tolist(), starts.tolist(), ends.tolist(), strict=True):
            self._edges[paths[node]] = _Edges(edge_key[start:end], edge_weight[start:end], edge_name[start:end])

    def _index_definitions(self, path: str, old: FileTags | None, new: FileTags | None) -> None:
        node = self._node.setdefault(path, len(self._node))
        file_keys = self._key.setdefault(path, {})
        touched: set[int] = set()
        if old is not None:
            for name, _, _ in old.definitions:
                key = file_keys[name]
                self._lines[key] = []
                touched.add(key)
        if new is not None:
            for name, line, _ in new.definitions:
                key = file_keys.get(name)
                if key is None:
                    key = file_keys[name] = len(self._key_node)
                    self._key_node.append(node)
                    self._key_name.append(name)
                    self._key_line.append(0)
                    self._lines.append([])
                    self._name_id.setdefault(name, len(self._name_id))
                self._lines[key].append(line)
                touched.add(key)
            for key in {file_keys[name] for name, _, _ in new.definitions}:
                self._lines[key].sort()
                self._key_line[key] = self._lines[key][0]
        if self._columns is not None:
            for key in touched:
                self._columns.set(key, self._key_node[key], self._key_line[key], bool(self._lines[key]))

    def _edges_of(self, source: str, file_tags: FileTags) -> _Edges:
        import numpy as np

        keys: list[int] = []
        weights: list[float] = []
        names: list[int] = []
        family = language_family(source)
        to_modules, loose = self._uses_through_modules(source, file_tags) if file_tags.qualified else ([], {})
        # Loose uses weigh apart from the file's plain references to the same name, as a full rebuild has it.
        for name, count in chain(file_tags.references.items(), loose.items()):
            targets = self._definers.get(name)
            if not targets or len(targets) > _TOO_GENERIC:
                continue
            weight = math.sqrt(count) * (_QUIET if name.startswith("_") else 1.0) / len(targets)
            for target in targets:
                if target != source and language_family(target) == family:
                    keys.append(self._key[target][name])
                    weights.append(weight)
                    names.append(self._name_id[name])
        for key, weight, name_id in to_modules:
            keys.append(key)
            weights.append(weight)
            names.append(name_id)
        return _Edges(
            np.asarray(keys, dtype=np.int64), np.asarray(weights, dtype=np.float64), np.asarray(names, dtype=np.int64)
        )

    def _module_files(self, source: str, family: str, module: str) -> list[str] | None:
        """The project's files of `module` as `source` (in `family`) names it ([] when the project's but not
        found to a file); None when the project does not define it (`Map`, `os.path`, `react`)."""
        memo = (family, posixpath.dirname(source) if module[:1] == "." else "", module)
        found = self._modules_seen.get(memo, self)
        if found is self:
            found = self._modules_seen[memo] = self._find_module_files(source, family, module)
        return found  # type: ignore[return-value]

    def _find_module_files(self, source: str, family: str, module: str) -> list[str] | None:
        if family == "elixir":
            return self._definers.get(module) or None
        if family == "python":
            if module.startswith("."):
                level = len(module) - len(module.lstrip("."))
                base = posixpath.dirname(source)
                for _ in range(level - 1):
                    base = posixpath.dirname(base)
                parts = [part for part in module[level:].split(".") if part]
                return self._python_files_of(posixpath.join(base, *parts) if parts else base)
            modules = self._python_modules()
            if module.split(".", 1)[0] not in self._python_roots:
                return None
            return modules.get(module, [])
        if family == "javascript":
            if module.startswith("."):
                return self._script_files_of(posixpath.normpath(posixpath.join(posixpath.dirname(source), module)))
            return [] if module.startswith(("@/", "~/", "#", "/")) else None
        return []

    def _python_files_of(self, stem: str) -> list[str]:
        stem = posixpath.normpath(stem)
        return [path for path in (f"{stem}.py", f"{stem}/__init__.py", f"{stem}.pyi") if path in self._tags]

    def _script_files_of(self, stem: str) -> list[str]:
        endings = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", "/index.ts", "/index.tsx", "/index.js", "/index.jsx")
        return [stem + ending for ending in endings if stem + ending in self._tags]

    def _python_modules(self) -> dict[str, list[str]]:
        """Every dotted name an import of the project's own Python code could use, to its files: `pkg.mod`,
        and `mod` too (a root we cannot know for sure: `src/`, a tests folder on the path)."""
        if self._python_index is None:
            index: dict[str, list[str]] = defaultdict(list)
            for path in self._tags:
                if not path.endswith((".py", ".pyi")):
                    continue
                parts = path.removesuffix(".pyi").removesuffix(".py").split("/")
                if parts[-1] == "__init__":
                    parts.pop()
                for start in range(len(parts)):
                    index[".".join(parts[start:])].append(path)
            self._python_index = dict(index)
            self._python_roots = frozenset(name.split(".", 1)[0] for name in index)
        return self._python_index

    def _uses_through_modules(
        self, source: str, file_tags: FileTags
    ) -> tuple[list[tuple[int, float, int]], dict[str, int]]:
        """`source`'s uses through modules: (key, weight, name id) edges to the definitions of the module each
        names, and the uses left to any definer in the language (a project module not followed to the
        file that defines the name: a re-export, a path alias). A module the project does not define
        (`Map.put`, `os.path.join`) gives neither; nor does an Elixir module without the name (`use` may
        generate its functions: no guess there)."""
        family = language_family(source)
        edges: list[tuple[int, float, int]] = []
        loose: dict[str, int] = {}
        for module, uses in file_tags.qualified.items():
            module_files = self._module_files(source, family, module)
            if module_files is None:
                continue
            for name, count in uses.items():
                keys = [
                    key
                    for path in module_files
                    if path != source and (key := self._key.get(path, {}).get(name)) is not None and self._lines[key]
                ]
                if keys:
                    weight = math.sqrt(count) * (_QUIET if name.startswith("_") else 1.0) / len(keys)
                    edges += [(key, weight, self._name_id[name]) for key in keys]
                elif family != "elixir":
                    loose[name] = loose.get(name, 0) + count
        return edges, loose

    def _edge_arrays(self, mentioned: frozenset[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import numpy as np

        parts = [(self._node[path], edges) for path, edges in self._edges.items() if len(edges.keys)]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0)
        sources = np.repeat(
            np.fromiter((node for node, _ in parts), dtype=np.int64, count=len(parts)),
            np.fromiter((len(edges.keys) for _, edges in parts), dtype=np.int64, count=len(parts)),
        )
        keys = np.concatenate([edges.keys for _, edges in parts])
        weights = np.concatenate([edges.weights for _, edges in parts])
        mentioned_ids = [self._name_id[name] for name in mentioned if name in self._name_id]
        if mentioned_ids:
            names = np.concatenate([edges.names for _, edges in parts])
            weights = weights * np.where(np.isin(names, mentioned_ids), _MENTIONED_FACTOR, 1.0)
        return sources, keys, weights

    def _pagerank(
        self,
        alive: np.ndarray,
        teleport: np.ndarray,
        sources: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray,
        outgoing: np.ndarray,
    ) -> np.ndarray:
        import numpy as np

        count = len(alive)
        if teleport.sum() > 0:
            # Mostly towards what the caller cares about, a little everywhere.
            teleport = 0.9 * teleport / teleport.sum() + 0.1 * alive / alive.sum()
        else:
            teleport = alive / alive.sum()
        fraction = np.divide(weights, outgoing[sources], out=np.zeros(len(weights)), where=outgoing[sources] > 0)
        dangling = alive & (outgoing == 0)
        rank = teleport.copy()
        if self._ranks is not None and len(self._ranks) <= count:
            rank[: len(self._ranks)] = self._ranks
            rank *= alive
            total = rank.sum()
            rank = rank / total if total > 0 else teleport.copy()
        for _ in range(MAX_ITERATIONS):
            flow = np.bincount(targets, weights=rank[sources] * fraction, minlength=count)
            new = DAMPING * flow + (1 - DAMPING + DAMPING * rank[dangling].sum()) * teleport
            delta = np.abs(new - rank).sum()
            rank = new
            if delta < TOLERANCE:
                break
        self._ranks = rank
        return rank


class _PackedLines(Sequence[list[int]]):
    """Each key's lines, read from a saved graph's flat arrays (as lists only when the graph changes)."""

    def __init__(self, flat: list[int], ends: list[int]) -> None:
        self._flat = flat
        self._ends = ends

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, key: int) -> list[int]: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[list[int]]: ...
    def __getitem__(self, key: int | slice) -> list[int] | Sequence[list[int]]:
        if isinstance(key, slice):
            return [self[index] for index in range(*key.indices(len(self)))]
        return self._flat[self._ends[key - 1] if key else 0 : self._ends[key]]


def _joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    import numpy as np

    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype=dtype)


def _within(values: np.ndarray, count: int) -> bool:
    """Every value is an index into `count` items."""
    return len(values) == 0 or (int(values.min()) >= 0 and int(values.max()) < count)


def rank_definitions(
    tags: Mapping[str, FileTags],
    personal: Mapping[str, float],
    mentioned: frozenset[str],
    limit: int | None = None,
    focus: frozenset[str] = frozenset(),
) -> list[Ranked]:
    """One-off ranking (a `RankEngine` kept between calls is faster after small changes)."""
    return RankEngine().rank(tags, personal, mentioned, limit, focus)
