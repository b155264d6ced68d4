"""The map's text: ranked definitions grouped by file, each member under the lines that open its owners (its
class, its module), fit to a token budget."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from ._rank import Ranked

CHARS_PER_TOKEN = 4
MAX_LINE_CHARS = 100
# Each rendered definition costs at least this many tokens (`   12│ x` plus its share of a path).
_MIN_TOKENS_PER_LINE = 3
# Lines that never open a block: blank ones are skipped before; these close one (`}`, `end`), end a header
# that spans lines (`) -> int:`), or hold a comment, a decorator or a docstring's quotes.
_NOT_AN_OPENER = re.compile(r"\s*(?:[)\]}]|end\b|#|//|/\*|\*|@|\"\"\"|''')")


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass
class SourceLines:
    """A file's lines, and the line that opens the innermost block holding each (by indentation), worked out
    only for the lines asked about and what lies above them."""

    lines: list[str]
    _parents: dict[int, int] = field(default_factory=dict, repr=False)
    """0-based line -> the 1-based line opening its block (0: the top level)."""

    def owners(self, line: int) -> list[int]:
        """The 1-based lines opening the blocks that enclose `line`, outermost first."""
        found = []
        parent = self._parent(line - 1) if 0 < line <= len(self.lines) else 0
        while parent:
            found.append(parent)
            parent = self._parent(parent - 1)
        return found[::-1]

    def _parent(self, index: int) -> int:
        """Up from line `index`, the nearest line indented less that can open a block. A line indented the
        same (a sibling: a previous method) has the same parent, so the walk continues from its answer."""
        known, lines = self._parents, self.lines
        waiting = []
        result = 0
        while True:
            if index in known:
                result = known[index]
                break
            waiting.append(index)
            level = _indentation(lines[index])
            if level == 0:
                break
            above = index - 1
            while above >= 0:
                text = lines[above]
                if text.strip() and not _NOT_AN_OPENER.match(text) and _indentation(text) <= level:
                    break
                above -= 1
            if above < 0:
                break
            if _indentation(lines[above]) < level:
                result = above + 1
                break
            index = above  # a sibling
        for index in waiting:
            known[index] = result
        return result


def _indentation(text: str) -> int:
    expanded = text.expandtabs(8) if "\t" in text else text
    return len(expanded) - len(expanded.lstrip())


def render(
    ranked: list[Ranked],
    max_tokens: int,
    read_source: Callable[[str], SourceLines],
    defined: Callable[[str], Collection[int]] = lambda path: (),
) -> str:
    """The most definitions that fit in `max_tokens`, grouped by file in rank order (the files of one directory
    under its `dir/` line, by name, where the best of them ranks). A member is shown under the
    lines that open its owners (`class Client:` above `def send(`), which count against the budget; the line
    numbers show what is left out between. Of the blocks around a member, those that define something (the
    lines `defined` gives for a file) are its owners; only when none does, the nearest block (the `if` a
    definition sits in) stands for them."""
    sources: dict[str, SourceLines] = {}
    definitions: dict[str, Collection[int]] = {}

    def source_of(path: str) -> SourceLines:
        if path not in sources:
            sources[path] = read_source(path)
            definitions[path] = defined(path)
        return sources[path]

    def build(count: int) -> str:
        files: dict[str, set[int]] = {}
        for item in ranked[:count]:
            files.setdefault(item.path, set()).add(item.line)
        # Files of one directory are shown together, under it, where the best of them ranks: a path such as
        # `server/lib/app/teams/` is written once, not on each of its files (in a deep tree, paths were ~40 %
        # of a map).
        directories: dict[str, list[str]] = {}
        for path in files:
            directories.setdefault(posixpath.dirname(path), []).append(path)
        out = []
        for directory, paths in directories.items():
            grouped = len(paths) > 1 and directory != ""
            if grouped:
                out.append(f"{directory}/")
            for path in paths:
                out.append(f"  {posixpath.basename(path)}:" if grouped else f"{path}:")
                out.extend(_code_lines(source_of(path), files[path], definitions[path]))
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


def _code_lines(source: SourceLines, numbers: set[int], defined: Collection[int]) -> list[str]:
    """The lines `numbers` of a file and those opening their owners, numbered."""
    shown = set(numbers)
    for number in numbers:
        owners = source.owners(number)
        shown.update([line for line in owners if line in defined] or owners[-1:])
    width = len(str(max(shown)))  # the file's own widest number: aligned, and no wider
    out = []
    for number in sorted(shown):
        text = source.lines[number - 1].rstrip() if 0 < number <= len(source.lines) else ""
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + "…"
        out.append(f"{number:>{width}}│ {text}")
    return out


def render_limit(max_tokens: int) -> int:
    """How many ranked definitions `render` can use at most for `max_tokens`."""
    return max_tokens // _MIN_TOKENS_PER_LINE + 1
