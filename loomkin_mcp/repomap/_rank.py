"""Rank files by PageRank over the reference graph, then fit their key definitions in a token budget.

A file that references a name another file defines gets an edge to it. Ranks are
personalised towards the files the caller cares about, and a definition's score is the rank
its referencing files pass to it, as in Aider's repo map. Tokens are estimated as
characters / 4 (Loomkin's own estimate).
"""

from __future__ import annotations

import heapq
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from ._tags import FileTags

DAMPING = 0.85
MAX_ITERATIONS = 50
# L1 change of the whole rank vector (which sums to 1): far below what reorders definitions.
TOLERANCE = 1e-5
CHARS_PER_TOKEN = 4
MAX_LINE_CHARS = 100
# Each rendered definition costs at least this many tokens (`   12│ x` plus its share of a path).
_MIN_TOKENS_PER_LINE = 3
# A name defined in more files than this (`__init__`, `get`, `run`) says little about who uses whom:
# its edges weigh a tenth; past _TOO_GENERIC definers it makes no edges at all.
_GENERIC_DEFINERS = 5
_TOO_GENERIC = 25


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Ranked:
    score: float
    path: str
    line: int
    name: str


def rank_definitions(
    tags: Mapping[str, FileTags],
    personal: Mapping[str, float],
    mentioned: frozenset[str],
    limit: int | None = None,
    warm: dict[str, float] | None = None,
) -> list[Ranked]:
    """Definitions, best first (only the best `limit` when given).

    `warm` holds file ranks from a previous call; PageRank starts from them (after a one-file
    change it then converges in a few iterations) and leaves the new ranks there.
    """
    definers: dict[str, list[str]] = defaultdict(list)
    for path, file_tags in tags.items():
        for name in {name for name, _, _ in file_tags.definitions}:
            definers[name].append(path)

    # For each source file: its (target, name, weight) edges, and their total weight.
    edges: dict[str, list[tuple[str, str, float]]] = {}
    for source, file_tags in tags.items():
        out = []
        for name, count in file_tags.references.items():
            targets = definers.get(name)
            if not targets or len(targets) > _TOO_GENERIC:
                continue
            factor = 10.0 if name in mentioned else 1.0
            if name.startswith("_") or len(targets) > _GENERIC_DEFINERS:
                factor *= 0.1
            weight = math.sqrt(count) * factor
            out.extend((target, name, weight) for target in targets if target != source)
        if out:
            edges[source] = out

    ranks = _pagerank(list(tags), edges, personal, warm or {})
    if warm is not None:
        warm.clear()
        warm.update(ranks)
    scores: dict[tuple[str, str], float] = defaultdict(float)
    for source, out in edges.items():
        share = ranks[source] / sum(weight for _, _, weight in out)
        for target, name, weight in out:
            scores[(target, name)] += share * weight

    def candidates() -> Iterator[tuple[float, int, str, int, str]]:
        sequence = 0
        for path in sorted(tags):
            # A definition also counts by how central its own file is: fully in the files the caller
            # cares about, a little elsewhere (so unreferenced definitions still order sensibly).
            own = ranks[path] * (1.0 if path in personal else 1e-3)
            for name, line, _ in tags[path].definitions:
                score = scores.get((path, name), 0.0) + own + (1.0 if name in mentioned else 0.0)
                sequence -= 1  # ties go to the earlier path and line
                yield (score, sequence, path, line, name)

    best = heapq.nlargest(limit, candidates()) if limit is not None else sorted(candidates(), reverse=True)
    return [Ranked(score, path, line, name) for score, _, path, line, name in best]


def _pagerank(
    nodes: list[str],
    edges: Mapping[str, list[tuple[str, str, float]]],
    personal: Mapping[str, float],
    start: Mapping[str, float],
) -> dict[str, float]:
    if not nodes:
        return {}
    index = {node: position for position, node in enumerate(nodes)}
    count = len(nodes)
    weights = [personal.get(node, 0.0) for node in nodes]
    total_personal = sum(weights)
    if total_personal <= 0:
        teleport = [1.0 / count] * count
    else:
        # Mostly towards what the caller cares about, a little everywhere.
        teleport = [0.9 * weight / total_personal + 0.1 / count for weight in weights]
    links: list[tuple[int, list[tuple[int, float]]]] = []
    for source, out in edges.items():
        per_target: dict[int, float] = defaultdict(float)
        for target, _, weight in out:
            per_target[index[target]] += weight
        total = sum(per_target.values())
        links.append((index[source], [(target, weight / total) for target, weight in per_target.items()]))
    has_links = [False] * count
    for source, _ in links:
        has_links[source] = True
    dangling_nodes = [node for node in range(count) if not has_links[node]]
    rank = [start.get(node, teleport[position]) for position, node in enumerate(nodes)]
    for _ in range(MAX_ITERATIONS):
        dangling = sum(rank[node] for node in dangling_nodes)
        base = 1 - DAMPING + DAMPING * dangling
        new = [base * value for value in teleport]
        for source, out in links:
            share = DAMPING * rank[source]
            for target, fraction in out:
                new[target] += share * fraction
        delta = sum(abs(a - b) for a, b in zip(new, rank, strict=True))
        rank = new
        if delta < TOLERANCE:
            break
    return {node: rank[position] for node, position in index.items()}


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
