"""Definitions and references in one file, from its tree-sitter tag query."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from functools import cache
from sys import intern

from tree_sitter import Node, QueryCursor

from ..syntax import Grammar, grammar_for, parser_and_query


class FileTags:
    """What one file defines (name, 1-based line, kind) and references (name -> count).

    `qualified` holds the uses that go through a module — `Config.get` after `alias App.Config`, `np.array`
    after `import numpy as np`, `join` after `from os.path import join`, `useStore()` imported from
    './store' — as module -> name -> count, the module resolved through the file's own aliases and imports
    (Elixir `App.Config`, Python `os.path` or `.sibling`, a TypeScript import's source): such a use reaches
    only that module, and nothing when the project does not define it.

    Tags read from the cache are decoded on first use: a warm map reads the tags of the few files it shows,
    not of the thousands it ranks from the saved graph."""

    __slots__ = ("mtime_ns", "size", "_definitions", "_references", "_qualified", "_stored", "_reread")

    def __init__(
        self,
        mtime_ns: int,
        size: int,
        definitions: list[tuple[str, int, str]] | None = None,
        references: dict[str, int] | None = None,
        qualified: dict[str, dict[str, int]] | None = None,
    ) -> None:
        self.mtime_ns = mtime_ns
        self.size = size
        self._definitions = definitions if definitions is not None else []
        self._references = references if references is not None else {}
        self._qualified = qualified if qualified is not None else {}
        self._stored: str | None = None
        self._reread: Callable[[], FileTags | None] | None = None

    @classmethod
    def stored(cls, mtime_ns: int, size: int, encoded: str, reread: Callable[[], FileTags | None]) -> FileTags:
        """Tags as `encoded()` wrote them, decoded when first read; should they not decode, `reread` parses
        the file again."""
        tags = cls(mtime_ns, size)
        tags._stored, tags._reread = encoded, reread
        return tags

    @property
    def definitions(self) -> list[tuple[str, int, str]]:
        if self._stored is not None:
            self._decode()
        return self._definitions

    @property
    def references(self) -> dict[str, int]:
        if self._stored is not None:
            self._decode()
        return self._references

    @property
    def qualified(self) -> dict[str, dict[str, int]]:
        if self._stored is not None:
            self._decode()
        return self._qualified

    def encoded(self) -> str:
        """The definitions, references and qualified uses as one JSON text (the cache keeps it as it was read)."""
        if self._stored is not None:
            return self._stored
        return json.dumps([self._definitions, self._references, self._qualified], separators=(",", ":"))

    def _decode(self) -> None:
        """Decode what the cache held. The cache sits in the project, which may hold anything: an entry that is
        not what `encoded` writes is parsed from the file again."""
        stored, self._stored = self._stored, None
        reread, self._reread = self._reread, None
        try:
            definitions, references, qualified = json.loads(stored)  # type: ignore[arg-type]
            self._definitions = [(intern(str(n)), int(line), intern(str(kind))) for n, line, kind in definitions]
            self._references = {intern(str(name)): int(count) for name, count in references.items()}
            self._qualified = {
                str(module): {intern(str(n)): int(c) for n, c in uses.items()} for module, uses in qualified.items()
            }
        except (ValueError, TypeError, AttributeError, RecursionError):
            fresh = reread() if reread is not None else None
            self._definitions = fresh.definitions if fresh is not None else []
            self._references = fresh.references if fresh is not None else {}
            self._qualified = fresh.qualified if fresh is not None else {}

    def interned(self) -> FileTags:
        """The same tags with names shared across files: thousands of files name `append` or `get` once each."""
        self._definitions = [(intern(name), line, intern(kind)) for name, line, kind in self.definitions]
        self._references = {intern(name): count for name, count in self.references.items()}
        self._qualified = {m: {intern(n): c for n, c in uses.items()} for m, uses in self.qualified.items()}
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
    # Uses through a name the file may import or alias: (that name, the qualifier as written, the name used).
    through: Counter[tuple[str, str, str]] = Counter()
    imports = _Imports(grammar.family)
    qualifier_of = _QUALIFIERS.get(grammar.family)
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
            qualifier = qualifier_of(node) if qualifier_of is not None else None
            if qualifier is not None:
                through[(*qualifier, name.decode("utf-8", errors="replace"))] += 1
            else:
                references[name] += 1
            continue
        if kind[0] == "i":  # import.*
            imports.add(kind, captures)
            continue
        line = node.start_point[0] + 1
        if (name, line) not in seen:
            seen.add((name, line))
            definitions.append((name.decode("utf-8", errors="replace"), line, kind.removeprefix("definition.")))
    plain = {name.decode("utf-8", errors="replace"): n for name, n in references.items()}
    qualified: dict[str, dict[str, int]] = {}
    for (root, written, used), count in through.items():
        module = imports.module_of(root, written)
        if module is None:  # a method of some object (`self.save()`, `conn.assigns`): any definer may serve
            plain[used] = plain.get(used, 0) + count
        else:
            uses = qualified.setdefault(module, {})
            uses[used] = uses.get(used, 0) + count
    for used in [used for used in plain if used in imports.members]:
        module, original = imports.members[used]
        uses = qualified.setdefault(module, {})
        uses[original] = uses.get(original, 0) + plain.pop(used)
    for module, original in imports.members.values():
        # Imported and not used here: passed on (a package's `__init__` re-exports it), a use all the same.
        qualified.setdefault(module, {}).setdefault(original, 1)
    return FileTags(mtime_ns, size, definitions, plain, qualified)


_KINDS = ("definition.", "reference.", "import.")


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


class _Imports:
    """What a file's imports and aliases bind: a name for a module (`import numpy as np`, Elixir `alias
    App.Config`, `import * as api from './api'`) or for a module's member (`from os.path import join`)."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.modules: dict[str, str] = {}
        self.members: dict[str, tuple[str, str]] = {}
        """binding -> (module, the member's own name)."""

    def add(self, kind: str, captures: dict[str, list[Node]]) -> None:
        target = _text(captures["name"][0])
        source = _text(captures["source"][0]) if "source" in captures else None
        binding = _text(captures["as"][0]) if "as" in captures else None
        if kind == "import.alias":  # Elixir: `alias A.B` names B; `alias A.{B, C}`; `alias A.B, as: D`
            full = f"{source}.{target}" if source else target
            self.modules[binding or full.rsplit(".", 1)[-1]] = full
        elif kind == "import.module":  # `import os.path` binds os; `import numpy as np`; `import * as X from 'x'`
            if source is not None:
                self.modules[binding or target] = source
            elif binding is not None:
                self.modules[binding] = target
            else:
                self.modules.setdefault(target.split(".", 1)[0], target.split(".", 1)[0])
        elif kind == "import.member" and source is not None:  # `from M import x [as y]`; `import {x as y} from 'm'`
            self.members[binding or target] = (source, target)

    def module_of(self, root: str, written: str) -> str | None:
        """The module a use written `written.name` goes through, when `root` (its first name) is imported."""
        if self.family == "elixir":
            full = self.modules.get(root)
            return f"{full}{written[len(root) :]}" if full else written  # an unaliased `Map` is Map itself
        if root in self.modules:
            module = self.modules[root]
            return module if self.family == "javascript" else f"{module}{written[len(root) :]}"
        if root in self.members:
            module, member = self.members[root]
            if self.family == "javascript":
                return module
            return f"{module}{'' if module.endswith('.') else '.'}{member}{written[len(root) :]}"
        return None


def _python_qualifier(name: Node) -> tuple[str, str] | None:
    """(first name, whole qualifier) of `a.b.name(...)`: `("os", "os.path")` for `os.path.join`."""
    return _dotted_qualifier(name, "attribute", "object", "attribute")


def _javascript_qualifier(name: Node) -> tuple[str, str] | None:
    return _dotted_qualifier(name, "member_expression", "object", "property")


def _dotted_qualifier(name: Node, dotted: str, left_field: str, right_field: str) -> tuple[str, str] | None:
    parent = name.parent
    if parent is None or parent.type != dotted:
        return None
    left = parent.child_by_field_name(left_field)
    if left is None or left.start_byte == name.start_byte:
        return None
    root = left
    while root.type == dotted:
        inner = root.child_by_field_name(left_field)
        if inner is None:
            return None
        root = inner
    if root.type != "identifier":
        return None
    return _text(root), _text(left)


def _elixir_qualifier(name: Node) -> tuple[str, str] | None:
    """`("Config", "Config")` for the `get` of `Config.get(...)`: the module a remote call goes through."""
    parent = name.parent
    if parent is None or parent.type != "dot":
        return None
    left = parent.child_by_field_name("left")
    if left is None or left.type != "alias" or left.start_byte == name.start_byte:
        return None
    written = _text(left)
    return written.split(".", 1)[0], written


_QUALIFIERS = {"elixir": _elixir_qualifier, "python": _python_qualifier, "javascript": _javascript_qualifier}
"""By language family (TypeScript and TSX are JavaScript's)."""


@cache
def _pattern_kinds(grammar: Grammar) -> dict[int, str | None]:
    """The tag kind of each pattern of `grammar`'s query (`definition.function`…; None for other patterns),
    learnt from its first match."""
    return {}
