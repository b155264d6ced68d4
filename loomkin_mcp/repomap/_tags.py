"""Definitions and references in one file, from its tree-sitter tag query."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from tree_sitter import QueryCursor

from ._languages import grammar_for, parser_and_query


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
            [(str(n), int(line), str(kind)) for n, line, kind in definitions],  # type: ignore[attr-defined]
            dict(references),  # type: ignore[call-overload]
        )


def extract(relative: str, source: bytes, mtime_ns: int, size: int) -> FileTags | None:
    """Tags of `source`, or None when no grammar handles the file."""
    grammar = grammar_for(relative)
    if grammar is None:
        return None
    loaded = parser_and_query(grammar)
    if loaded is None:
        return None
    parser, query = loaded
    tree = parser.parse(source)
    tags = FileTags(mtime_ns, size)
    references: Counter[str] = Counter()
    seen: set[tuple[str, int]] = set()
    for _, captures in QueryCursor(query).matches(tree.root_node):
        names = captures.get("name")
        if not names:
            continue
        kind = next((key for key in captures if key.startswith(("definition.", "reference."))), None)
        if kind is None:
            continue
        node = names[0]
        name = node.text.decode("utf-8", errors="replace") if node.text else ""
        if not name:
            continue
        if kind.startswith("definition."):
            line = node.start_point[0] + 1
            if (name, line) not in seen:
                seen.add((name, line))
                tags.definitions.append((name, line, kind.removeprefix("definition.")))
        else:
            references[name] += 1
    tags.references = dict(references)
    return tags
