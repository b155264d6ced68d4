"""Symbols from tree-sitter: the repo map's grammars and tag queries, with each definition's whole range.

Used where no language server serves a file (Elixir or Ruby without one), for directory-wide
searches, and to check that an edited file still parses.
"""

from __future__ import annotations

from tree_sitter import Node, QueryCursor

from ..syntax import grammar_for, parser_and_query
from ._model import Symbol, group_clauses, nest

# A tag query may capture only the declarator of a C or C++ function: its definition is the node above.
_DECLARATORS = frozenset({"function_declarator", "pointer_declarator", "reference_declarator"})
_DEFINITIONS_OF_DECLARATORS = frozenset({"function_definition", "declaration", "field_declaration"})
# Text inserted before a definition goes before these wrappers (decorators, `template <…>`, `export`).
_WRAPPERS = frozenset({"decorated_definition", "template_declaration", "export_statement"})
_TYPES = frozenset({"class", "struct", "interface"})


class _Offsets:
    """String offsets of tree-sitter's byte positions (the same numbers for ASCII text)."""

    def __init__(self, source: bytes, text: str) -> None:
        self._ascii = len(source) == len(text)
        self._source = source

    def of(self, node_byte: int) -> int:
        if self._ascii:
            return node_byte
        return len(self._source[:node_byte].decode("utf-8", errors="replace"))


def parses(relative: str) -> bool:
    """Whether a grammar reads `relative` (so an edit can be checked for parse errors)."""
    grammar = grammar_for(relative)
    return grammar is not None and parser_and_query(grammar) is not None


def symbols(relative: str, text: str) -> list[Symbol] | None:
    """The symbol tree of `text`, or None when no grammar reads the file."""
    grammar = grammar_for(relative)
    loaded = parser_and_query(grammar) if grammar else None
    if grammar is None or loaded is None:
        return None
    parser, query = loaded
    source = text.encode("utf-8")
    offsets = _Offsets(source, text)
    parsed = parser.parse(source)
    seen: set[tuple[int, int, str]] = set()
    flat: list[Symbol] = []
    for _, captures in QueryCursor(query).matches(parsed.root_node):
        kind = next((key for key in captures if key.startswith("definition.")), None)
        names = captures.get("name")
        if kind is None or not names:
            continue
        name_node = names[0]
        node = _definition(captures[kind][0])
        name = (name_node.text or b"").decode("utf-8", errors="replace")
        if not name or (node.start_byte, node.end_byte, name) in seen:
            continue
        seen.add((node.start_byte, node.end_byte, name))
        outer = _outermost(node)
        flat.append(
            Symbol(
                name=name,
                kind=kind.removeprefix("definition."),
                start=offsets.of(node.start_byte),
                end=offsets.of(node.end_byte),
                name_at=offsets.of(name_node.start_byte),
                outer_start=offsets.of(outer.start_byte) if outer is not node else None,
                arity=_elixir_arity(name_node) if grammar.name == "elixir" and kind == "definition.function" else None,
            )
        )
    tree = group_clauses(nest(flat))
    for top in tree:
        for symbol in top.walk():
            # Tag queries call every function a function: one directly in a class is a method.
            if symbol.kind == "function" and symbol.parent is not None and symbol.parent.kind in _TYPES:
                symbol.kind = "method"
    return tree


def _definition(node: Node) -> Node:
    if node.type not in _DECLARATORS:
        return node
    top = node
    while top.parent is not None and top.parent.type in _DECLARATORS:
        top = top.parent
    if top.parent is not None and top.parent.type in _DEFINITIONS_OF_DECLARATORS:
        return top.parent
    return node


def _outermost(node: Node) -> Node:
    while node.parent is not None and node.parent.type in _WRAPPERS:
        node = node.parent
    return node


def _elixir_arity(name_node: Node) -> int:
    """`def get(id, opts)` → 2; `def now` → 0 (the name node is the call's target, or a bare identifier)."""
    call = name_node.parent
    if call is None or call.type != "call":
        return 0
    arguments = next((child for child in call.children if child.type == "arguments"), None)
    return 0 if arguments is None else arguments.named_child_count


_ELIXIR_DEFINERS = frozenset({b"def", b"defp", b"defmacro", b"defmacrop", b"defguard", b"defguardp", b"defdelegate"})


def elixir_uses(text: str, name: str, arity: int | None) -> set[int]:
    """0-based rows where `text` uses the Elixir function `name` with `arity` (any arity when None): calls, piped
    calls (the pipe gives the first argument), qualified calls and captures (`&name/2`); not its definitions, not
    `:name` atoms, not `name:` keys."""
    grammar = grammar_for("x.ex")
    loaded = parser_and_query(grammar) if grammar else None
    if loaded is None:
        return set()
    wanted = name.encode("utf-8")
    rows: set[int] = set()
    stack = [loaded[0].parse(text.encode("utf-8")).root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.type != "identifier" or node.text != wanted:
            continue
        used = _elixir_use_arity(node)
        if used is not False and (arity is None or used is None or used == arity):
            rows.add(node.start_point[0])
    return rows


def _elixir_use_arity(identifier: Node) -> int | None | bool:
    """The arity `identifier` is used with; None when it cannot be told; False when it is no use (a definition)."""
    qualified = identifier.parent is not None and identifier.parent.type == "dot"
    named = identifier.parent if qualified else identifier  # `name`, or `Module.name`
    assert named is not None
    parent = named.parent
    call = parent if parent is not None and parent.type == "call" and parent.children[0] == named else None
    arguments = next((child for child in call.children if child.type == "arguments"), None) if call else None
    subject = call or named
    holder = subject.parent
    if arguments is None and holder is not None and holder.type == "binary_operator" and holder.children[0] == subject:
        if holder.parent is not None and holder.parent.type == "unary_operator":  # `&name/2`
            right = holder.children[-1]
            return int(right.text) if right.type == "integer" and right.text.isdigit() else None
    if call is None:
        return None  # a bare name: a variable, or a call without parentheses
    if _defines(call):
        return False
    count = 0 if arguments is None else arguments.named_child_count
    if holder is not None and holder.type == "binary_operator" and holder.children[-1] == call:
        count += 1 if any(child.type == "|>" for child in holder.children) else 0
    return count


def _defines(call: Node) -> bool:
    """Whether `call` is the head of a definition: `def name(args)`, with or without a `when` guard."""
    holder = call.parent
    if holder is not None and holder.type == "binary_operator" and any(c.type == "when" for c in holder.children):
        holder = holder.parent
    if holder is None or holder.type != "arguments" or holder.parent is None:
        return False
    target = holder.parent.children[0]
    return target.type == "identifier" and target.text in _ELIXIR_DEFINERS
