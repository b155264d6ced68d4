"""Definitions and references in one file, from its tree-sitter tag query."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from sys import intern

from tree_sitter import Node, QueryCursor

from ._languages import Grammar, grammar_for, parser_and_query


@dataclass
class FileTags:
    """What one file defines (name, 1-based line, kind) and references (name -> count).

    `qualified` holds calls through a module (`Config.get`, `Map.put`: module as written -> name -> count) and
    `aliases` the file's short names for modules (`Config` -> `Loomkin.Config`), so a call reaches only the
    module it names — none at all when the project does not define that module."""

    mtime_ns: int
    size: int
    definitions: list[tuple[str, int, str]] = field(default_factory=list)
    references: dict[str, int] = field(default_factory=dict)
    qualified: dict[str, dict[str, int]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> list[object]:
        return [self.mtime_ns, self.size, self.definitions, self.references, self.qualified, self.aliases]

    @classmethod
    def from_json(cls, data: list[object]) -> FileTags:
        mtime_ns, size, definitions, references, qualified, aliases = data
        return cls(
            int(mtime_ns),  # type: ignore[call-overload]
            int(size),  # type: ignore[call-overload]
            [(intern(str(n)), int(line), intern(str(kind))) for n, line, kind in definitions],  # type: ignore[attr-defined]
            {intern(str(name)): int(count) for name, count in references.items()},  # type: ignore[attr-defined]
            {str(module): {intern(str(n)): int(c) for n, c in calls.items()} for module, calls in qualified.items()},  # type: ignore[attr-defined]
            {str(short): str(full) for short, full in aliases.items()},  # type: ignore[attr-defined]
        )

    def interned(self) -> FileTags:
        """The same tags with names shared across files: thousands of files name `append` or `get` once each."""
        self.definitions = [(intern(name), line, intern(kind)) for name, line, kind in self.definitions]
        self.references = {intern(name): count for name, count in self.references.items()}
        self.qualified = {m: {intern(n): c for n, c in calls.items()} for m, calls in self.qualified.items()}
        return self

    def module_of(self, written: str) -> str:
        """The full name of a module as this file writes it (through its aliases)."""
        first, dot, rest = written.partition(".")
        full = self.aliases.get(first)
        return f"{full}{dot}{rest}" if full else written


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
    qualified: dict[str, Counter[str]] = {}
    aliases: dict[str, str] = {}
    through_modules = grammar.name == "elixir"
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
            if through_modules:
                module = _module_called(node)
                if module is not None:
                    qualified.setdefault(module, Counter())[name.decode("utf-8", errors="replace")] += 1
                    continue
            references[name] += 1
            continue
        if kind[0] == "i":  # import.*: an Elixir `alias`
            full = name.decode("utf-8", errors="replace")
            if "prefix" in captures:
                full = f"{captures['prefix'][0].text.decode('utf-8', errors='replace')}.{full}"
            short = captures["as"][0].text.decode("utf-8", errors="replace") if "as" in captures else full
            aliases[short.rsplit(".", 1)[-1]] = full
            continue
        line = node.start_point[0] + 1
        if (name, line) not in seen:
            seen.add((name, line))
            definitions.append((name.decode("utf-8", errors="replace"), line, kind.removeprefix("definition.")))
    return FileTags(
        mtime_ns,
        size,
        definitions,
        {name.decode("utf-8", errors="replace"): n for name, n in references.items()},
        {module: dict(calls) for module, calls in qualified.items()},
        aliases,
    )


_KINDS = ("definition.", "reference.", "import.")


def _module_called(name: Node) -> str | None:
    """`Config` for the `get` of `Config.get(...)`: the module a remote call goes through, as written."""
    parent = name.parent
    if parent is None or parent.type != "dot":
        return None
    left = parent.child_by_field_name("left")
    if left is None or left.type != "alias" or left.text is None or left.start_byte == name.start_byte:
        return None
    return left.text.decode("utf-8", errors="replace")


@cache
def _pattern_kinds(grammar: Grammar) -> dict[int, str | None]:
    """The tag kind of each pattern of `grammar`'s query (`definition.function`…; None for other patterns),
    learnt from its first match."""
    return {}
