"""Rank files by PageRank over the reference graph, then fit their key definitions in a token budget.

A file that references a name another file defines gets an edge to it. Ranks are
personalised towards the files the caller cares about, and a definition's score is the rank
its referencing files pass to it, as in Aider's repo map. Tokens are estimated as
characters / 4 (Loomkin's own estimate).

`RankEngine` keeps the graph between calls: after a one-file change only the edges of that
file, and of the files that use the names it (un)defines, are rebuilt; PageRank and scoring
run vectorised (numpy) and start from the previous ranks.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._tags import FileTags

if TYPE_CHECKING:
    import numpy as np

DAMPING = 0.85
MAX_ITERATIONS = 100
# L1 change of the whole rank vector (which sums to 1): far below what reorders definitions.
TOLERANCE = 1e-6
CHARS_PER_TOKEN = 4
MAX_LINE_CHARS = 100
# Each rendered definition costs at least this many tokens (`   12│ x` plus its share of a path).
_MIN_TOKENS_PER_LINE = 3
# A name defined in more files than this (`__init__`, `get`, `run`) says little about who uses whom:
# its edges weigh a tenth; past _TOO_GENERIC definers it makes no edges at all.
_GENERIC_DEFINERS = 5
_TOO_GENERIC = 25
# How much a definition owes to its own file's rank: fully in the files the caller cares about,
# a little elsewhere (so unreferenced definitions still order sensibly).
_OWN_RANK_FOCUSED = 1.0
_OWN_RANK_OTHER = 1e-3
_MENTIONED_FACTOR = 10.0
_MENTIONED_BONUS = 1.0


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


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
        self._lines: list[list[int]] = []
        """Each key's lines, in order (empty once its file no longer defines the name)."""
        self._columns: _Columns | None = None
        """numpy copies of each key's node, first line and whether it is defined, kept in step with the lists."""
        self._path_order: np.ndarray | None = None
        self._ranks: np.ndarray | None = None

    def rank(
        self,
        tags: Mapping[str, FileTags],
        personal: Mapping[str, float],
        mentioned: frozenset[str],
        limit: int | None = None,
    ) -> list[Ranked]:
        """Definitions, best first (only the best `limit` when given)."""
        import numpy as np

        self._sync(tags)
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
        outgoing = np.bincount(sources, weights=weights, minlength=count)
        ranks = self._pagerank(alive, personal, sources, edge_targets, weights, outgoing)

        share = np.divide(ranks, outgoing, out=np.zeros(count), where=outgoing > 0)
        scores = np.bincount(keys, weights=share[sources] * weights, minlength=columns.size)
        focused = np.zeros(count, dtype=bool)
        focused[[self._node[path] for path in personal if path in self._node]] = True
        own = ranks[key_nodes] * np.where(focused[key_nodes], _OWN_RANK_FOCUSED, _OWN_RANK_OTHER)
        scores = scores + own
        for name in mentioned:
            for path in self._definers.get(name, ()):
                scores[self._key[path][name]] += _MENTIONED_BONUS
        live = np.flatnonzero(alive[key_nodes] & columns.defined[: columns.size])
        if len(live) == 0:
            return []
        # Ordered on scores rounded to single precision: sums taken in another order (files parsed in
        # another order, a graph updated rather than rebuilt) differ in the last bits, and a tie must stay
        # a tie so the same project always gives the same map.
        negated = -scores[live].astype(np.float32)
        if limit is not None and len(live) > limit:
            # Only the best `limit` keys can be shown: order those (and any tied with the last of them).
            best = negated <= np.partition(negated, limit - 1)[limit - 1]
            live, negated = live[best], negated[best]
        # Best score first; ties go to the earlier path, then the earlier line, whatever the ids.
        path_order = self._order_of_paths()
        order = live[np.lexsort((key_lines[live], path_order[key_nodes[live]], negated))]
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

    # -- keeping the graph in step with the tags ------------------------------------------

    def _sync(self, tags: Mapping[str, FileTags]) -> None:
        changed = {path for path, file_tags in tags.items() if self._tags.get(path) is not file_tags}
        changed |= self._tags.keys() - tags.keys()
        if not changed:
            return
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
            old_refs = set(old.references) if old else set()
            new_refs = set(new.references) if new else set()
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
                for name in file_tags.references:
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
        for path, file_tags in self._tags.items():
            ids = [get(name, -1) for name in file_tags.references]
            sources += [self._node[path]] * len(ids)
            referenced += ids
            counts += file_tags.references.values()
        source = np.asarray(sources, dtype=np.int64)
        name = np.asarray(referenced, dtype=np.int64)
        count = np.asarray(counts, dtype=np.float64)
        known = name >= 0
        source, name, count = source[known], name[known], count[known]
        fan = definer_count[name]
        keep = (fan > 0) & (fan <= _TOO_GENERIC)
        source, name, count, fan = source[keep], name[keep], count[keep], fan[keep]
        weight = np.sqrt(count) * np.where(quiet[name] | (fan > _GENERIC_DEFINERS), 0.1, 1.0)
        # One edge per definer of the name: repeat each pair by its name's definers, then index into them.
        edge_source = np.repeat(source, fan)
        edge_name = np.repeat(name, fan)
        edge_weight = np.repeat(weight, fan)
        within = np.arange(len(edge_source)) - np.repeat(np.cumsum(fan) - fan, fan)
        edge_key = by_name[first[edge_name] + within]
        columns = self._columns = _Columns.of(self._key_node, self._key_line, self._lines)
        not_self = columns.node[edge_key] != edge_source
        edge_source, edge_name, edge_weight, edge_key = (
            edge_source[not_self], edge_name[not_self], edge_weight[not_self], edge_key[not_self]
        )  # fmt: skip
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
        for name, count in file_tags.references.items():
            targets = self._definers.get(name)
            if not targets or len(targets) > _TOO_GENERIC:
                continue
            weight = math.sqrt(count) * (0.1 if name.startswith("_") or len(targets) > _GENERIC_DEFINERS else 1.0)
            for target in targets:
                if target != source:
                    keys.append(self._key[target][name])
                    weights.append(weight)
                    names.append(self._name_id[name])
        return _Edges(
            np.asarray(keys, dtype=np.int64), np.asarray(weights, dtype=np.float64), np.asarray(names, dtype=np.int64)
        )

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
        personal: Mapping[str, float],
        sources: np.ndarray,
        targets: np.ndarray,
        weights: np.ndarray,
        outgoing: np.ndarray,
    ) -> np.ndarray:
        import numpy as np

        count = len(alive)
        teleport = np.zeros(count)
        for path, weight in personal.items():
            if path in self._node:
                teleport[self._node[path]] += weight
        teleport *= alive
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


def rank_definitions(
    tags: Mapping[str, FileTags],
    personal: Mapping[str, float],
    mentioned: frozenset[str],
    limit: int | None = None,
) -> list[Ranked]:
    """One-off ranking (a `RankEngine` kept between calls is faster after small changes)."""
    return RankEngine().rank(tags, personal, mentioned, limit)


def render(ranked: list[Ranked], max_tokens: int, read_lines: Callable[[str], list[str]]) -> str:
    """The most definitions that fit in `max_tokens`, grouped by file in rank order."""
    lines_cache: dict[str, list[str]] = {}

    def lines_of(path: str) -> list[str]:
        if path not in lines_cache:
            lines_cache[path] = read_lines(path)
        return lines_cache[path]

    def build(count: int) -> str:
        files: dict[str, list[int]] = {}
        for item in ranked[:count]:
            files.setdefault(item.path, []).append(item.line)
        out = []
        for path, numbers in files.items():
            source = lines_of(path)
            out.append(f"{path}:")
            for number in sorted(set(numbers)):
                text = source[number - 1].rstrip() if 0 < number <= len(source) else ""
                if len(text) > MAX_LINE_CHARS:
                    text = text[:MAX_LINE_CHARS] + "…"
                out.append(f"{number:>5}│ {text}")
        return "\n".join(out)

    low, high = 0, min(len(ranked), max_tokens // _MIN_TOKENS_PER_LINE)
    best = ""
    while low <= high:
        middle = (low + high) // 2
        text = build(middle)
        if estimate_tokens(text) <= max_tokens:
            best, low = text, middle + 1
        else:
            high = middle - 1
    return best


def render_limit(max_tokens: int) -> int:
    """How many ranked definitions `render` can use at most for `max_tokens`."""
    return max_tokens // _MIN_TOKENS_PER_LINE + 1
