"""The repo map: tree-sitter tags of every source file, ranked by PageRank, fit to a token budget.

Importing this package loads tree-sitter; the service imports it only when a map is asked for.
"""

from ._history import co_changed, commits_of_log
from ._index import BuildStats, RepoIndex
from ._languages import GRAMMARS, grammar_for
from ._memory import release_freed_memory
from ._public import public_surface
from ._rank import Ranked, RankEngine, rank_definitions
from ._render import CHARS_PER_TOKEN, SourceLines, estimate_tokens, render, render_limit
from ._tags import FileTags, extract

__all__ = [
    "CHARS_PER_TOKEN",
    "GRAMMARS",
    "BuildStats",
    "FileTags",
    "RankEngine",
    "Ranked",
    "RepoIndex",
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
