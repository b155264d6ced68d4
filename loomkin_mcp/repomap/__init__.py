"""The repo map: tree-sitter tags of every source file, ranked by PageRank, fit to a token budget.

Importing this package is cheap: each name loads its module on first use, so the service costs nothing at start-up
and tree-sitter loads when a map is first asked for.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes

if TYPE_CHECKING:
    from ..syntax import GRAMMARS, grammar_for
    from ._history import co_changed, commits_of_log
    from ._index import BuildStats, RepoIndex
    from ._memory import release_freed_memory
    from ._public import public_surface
    from ._rank import Ranked, RankEngine, rank_definitions
    from ._render import CHARS_PER_TOKEN, SourceLines, estimate_tokens, render, render_limit
    from ._service import ProgressReport, RepoMapService
    from ._tags import FileTags, extract

_LAZY = {
    "BuildStats": "._index",
    "CHARS_PER_TOKEN": "._render",
    "FileTags": "._tags",
    "GRAMMARS": "..syntax",
    "ProgressReport": "._service",
    "RankEngine": "._rank",
    "Ranked": "._rank",
    "RepoIndex": "._index",
    "RepoMapService": "._service",
    "SourceLines": "._render",
    "co_changed": "._history",
    "commits_of_log": "._history",
    "estimate_tokens": "._render",
    "extract": "._tags",
    "grammar_for": "..syntax",
    "public_surface": "._public",
    "rank_definitions": "._rank",
    "release_freed_memory": "._memory",
    "render": "._render",
    "render_limit": "._render",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "BuildStats",
    "CHARS_PER_TOKEN",
    "FileTags",
    "GRAMMARS",
    "ProgressReport",
    "RankEngine",
    "Ranked",
    "RepoIndex",
    "RepoMapService",
    "SourceLines",
    "co_changed",
    "commits_of_log",
    "estimate_tokens",
    "extract",
    "grammar_for",
    "public_surface",
    "rank_definitions",
    "release_freed_memory",
    "render",
    "render_limit",
]
