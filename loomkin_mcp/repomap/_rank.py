"""Rank files by PageRank over the reference graph, then fit their key definitions in a token budget.

A file that references a name another file defines gets an edge to it. Ranks are
personalised towards the files the caller cares about, and a definition's score is the rank
its referencing files pass to it, as in Aider's repo map. Tokens are estimated as
characters / 4 (Loomkin's own estimate).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ._tags import FileTags

DAMPING = 0.85
MAX_ITERATIONS = 50
TOLERANCE = 1e-7
CHARS_PER_TOKEN = 4
MAX_LINE_CHARS = 100
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
    tags: Mapping[str, FileTags], personal: Mapping[str, float], mentioned: frozenset[str]
) -> list[Ranked]:
    definers: dict[str, list[str]] = defaultdict(list)
    for path, file_tags in tags.items():
        for name in {name for name, _, _ in file_tags.definitions}:
            definers[name].append(path)

    # edges[source][(target, name)] = weight
    edges: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for source, file_tags in tags.items():
        for name, count in file_tags.references.items():
            targets = definers.get(name)
            if not targets or len(targets) > _TOO_GENERIC:
                continue
            factor = 10.0 if name in mentioned else 1.0
            if name.startswith("_") or len(targets) > _GENERIC_DEFINERS:
                factor *= 0.1
            for target in targets:
                if target != source:
                    edges[source][(target, name)] = math.sqrt(count) * factor

    ranks = _pagerank(list(tags), edges, personal)
    scores: dict[tuple[str, str], float] = defaultdict(float)
    for source, out in edges.items():
        total = sum(out.values())
        for key, weight in out.items():
            scores[key] += ranks[source] * weight / total

    ranked: list[Ranked] = []
    for path, file_tags in tags.items():
        for name, line, _ in file_tags.definitions:
            # A definition also counts by how central its own file is: fully in the files the caller
            # cares about, a little elsewhere (so unreferenced definitions still order sensibly).
            score = scores.get((path, name), 0.0) + ranks[path] * (1.0 if path in personal else 1e-3)
            if name in mentioned:
                score += 1.0
            ranked.append(Ranked(score, path, line, name))
    ranked.sort(key=lambda item: (-item.score, item.path, item.line))
    return ranked


def _pagerank(
    nodes: list[str], edges: Mapping[str, Mapping[tuple[str, str], float]], personal: Mapping[str, float]
) -> dict[str, float]:
    if not nodes:
        return {}
    weights = {node: personal.get(node, 0.0) for node in nodes}
    total_personal = sum(weights.values())
    if total_personal <= 0:
        teleport = dict.fromkeys(nodes, 1.0 / len(nodes))
    else:
        # Mostly towards what the caller cares about, a little everywhere.
        floor = 0.1 / len(nodes)
        teleport = {node: 0.9 * weights[node] / total_personal + floor for node in nodes}
    # Collapse (target, name) edges to one weight per target.
    links: dict[str, list[tuple[str, float]]] = {}
    for source, out in edges.items():
        per_target: dict[str, float] = defaultdict(float)
        for (target, _), weight in out.items():
            per_target[target] += weight
        total = sum(per_target.values())
        links[source] = [(target, weight / total) for target, weight in per_target.items()]
    rank = dict(teleport)
    for _ in range(MAX_ITERATIONS):
        dangling = sum(rank[node] for node in nodes if node not in links)
        new = {node: (1 - DAMPING + DAMPING * dangling) * teleport[node] for node in nodes}
        for source, out in links.items():
            share = DAMPING * rank[source]
            for target, fraction in out:
                new[target] += share * fraction
        delta = sum(abs(new[node] - rank[node]) for node in nodes)
        rank = new
        if delta < TOLERANCE:
            break
    return rank


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

    low, high = 0, len(ranked)
    best = ""
    while low <= high:
        middle = (low + high) // 2
        text = build(middle)
        if estimate_tokens(text) <= max_tokens:
            best, low = text, middle + 1
        else:
            high = middle - 1
    return best
