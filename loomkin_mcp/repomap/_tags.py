"""Definitions and references in one file, from its tree-sitter tag query."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from sys import intern

from tree_sitter import QueryCursor

from ._languages import Grammar, grammar_for, parser_and_query


@dataclass
class FileTags:
    """What one file defines (name, 1-based line, kind) and references (name -> count)."""

    mtime_ns: int
    size: int
    definitions: list[tuple[str, int, str]] = field(default_factory=list)
    references: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> list[object]:
        return [self.mtime_ns, self.size, self.definitions, self.references]

    @classmethod
    def from_json(cls, data: list[object]) -> FileTags:
        mtime_ns, size, definitions, references = data
        return cls(
            int(mtime_ns),  # type: ignore[call-overload]
            int(size),  # type: ignore[call-overload]
            [(intern(str(n)), int(line), intern(str(kind))) for n, line, kind in definitions],  # type: ignore[attr-defined]
            {intern(str(name)): int(count) for name, count in references.items()},  # type: ignore[attr-defined]
        )

    def interned(self) -> FileTags:
        """The same tags with names shared across files: thousands of files name `append` or `get` once each."""
        self.definitions = [(intern(name), line, intern(kind)) for name, line, kind in self.definitions]
        self.references = {intern(name): count for name, count in self.references.items()}
        return self


def extract(relative: str, source: bytes, mtime_ns: int, size: int) -> FileTags | None:
    """Tags of `source`, or None when no grammar handles the file."""
    grammar = grammar_for(relative)
    if grammar is None:
        return None
    loaded = parser_and_query(grammar)
    if loaded is None:
        return None
    parser, query = loaded
    kinds = _pattern_kinds(grammar)
    tree = parser.parse(source)
    definitions: list[tuple[str, int, str]] = []
    references: Counter[bytes] = Counter()
    seen: set[tuple[bytes, int]] = set()
    # The hot loop of a cold map (hundreds of thousands of matches): kept to what each match needs.
    for pattern, captures in QueryCursor(query).matches(tree.root_node):
        kind = kinds.get(pattern)
        if kind is None:
            if pattern in kinds:
                continue
            kind = kinds[pattern] = next((key for key in captures if key.startswith(_KINDS)), None)
            if kind is None:
                continue
        names = captures.get("name")
        if not names:
            continue
        node = names[0]
        name = node.text
        if not name:
            continue
        if kind[0] == "r":  # reference.*
            references[name] += 1
            continue
        line = node.start_point[0] + 1
        if (name, line) not in seen:
            seen.add((name, line))
            definitions.append((name.decode("utf-8", errors="replace"), line, kind.removeprefix("definition.")))
    return FileTags(
        mtime_ns, size, definitions, {name.decode("utf-8", errors="replace"): n for name, n in references.items()}
    )


_KINDS = ("definition.", "reference.")


@cache
def _pattern_kinds(grammar: Grammar) -> dict[int, str | None]:
    """The tag kind of each pattern of `grammar`'s query (`definition.function`…; None for other patterns),
    learnt from its first match."""
    return {}
