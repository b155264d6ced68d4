"""Grammars and tag queries: which definitions and references each language yields.

The queries are the grammar wheels' own `queries/tags.scm`, plus ours where a wheel's finds
no references (C, C++) or misses what JavaScript has too (TypeScript's functions and classes).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tree_sitter import Language, Parser, Query

# Languages whose names can refer to each other's: TypeScript and TSX are JavaScript's family, C++ is C's.
_FAMILIES = {"typescript": "javascript", "tsx": "javascript", "cpp": "c"}


@dataclass(frozen=True)
class Grammar:
    name: str
    module: str
    function: str
    extensions: tuple[str, ...]
    extra: str = ""

    @property
    def family(self) -> str:
        return _FAMILIES.get(self.name, self.name)


_C_REFERENCES = """
(call_expression function: (identifier) @name) @reference.call
(type_identifier) @name @reference.type
"""

_CPP_REFERENCES = (
    _C_REFERENCES
    + """
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
(call_expression function: (qualified_identifier name: (identifier) @name)) @reference.call
"""
)

# The wheel's TypeScript tags cover only what TypeScript adds to JavaScript.
_TYPESCRIPT_EXTRA = """
(function_declaration name: (identifier) @name) @definition.function
(class_declaration name: (type_identifier) @name) @definition.class
(method_definition name: (property_identifier) @name) @definition.method
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (member_expression property: (property_identifier) @name)) @reference.call
(lexical_declaration
  (variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)])) @definition.function
"""

# An Elixir file's `alias A.B`, `alias A.{B, C}` and `alias A.B, as: D`: its short names for modules.
_ELIXIR_ALIASES = """
(call target: (identifier) @_alias (arguments . (alias) @name . ) (#eq? @_alias "alias")) @import.alias
(call target: (identifier) @_alias
  (arguments . (dot left: (alias) @source right: (tuple (alias) @name)))
  (#eq? @_alias "alias")) @import.alias
(call target: (identifier) @_alias
  (arguments . (alias) @name (keywords (pair key: (keyword) @_as value: (alias) @as)))
  (#eq? @_alias "alias") (#eq? @_as "as: ")) @import.alias
"""

# What a Python file's imports bind: a module (`import os.path`, `import numpy as np`) or a module's member.
_PYTHON_IMPORTS = """
(import_statement name: (dotted_name) @name) @import.module
(import_statement name: (aliased_import name: (dotted_name) @name alias: (identifier) @as)) @import.module
(import_from_statement module_name: (_) @source name: (dotted_name) @name) @import.member
(import_from_statement
  module_name: (_) @source name: (aliased_import name: (dotted_name) @name alias: (identifier) @as)) @import.member
"""

# The same for JavaScript and TypeScript: `import X from 's'`, `import * as X from 's'`, `import {x as y} from 's'`.
_JS_IMPORTS = """
(import_statement (import_clause (identifier) @name) source: (string (string_fragment) @source)) @import.module
(import_statement
  (import_clause (namespace_import (identifier) @name)) source: (string (string_fragment) @source)) @import.module
(import_statement
  (import_clause (named_imports (import_specifier name: (identifier) @name)))
  source: (string (string_fragment) @source)) @import.member
(import_statement
  (import_clause (named_imports (import_specifier name: (identifier) @name alias: (identifier) @as)))
  source: (string (string_fragment) @source)) @import.member
"""

# A component used as `<Banner … />` is a call of `Banner` (React and the like).
_JSX_REFERENCES = """
(jsx_opening_element name: (identifier) @name) @reference.call
(jsx_self_closing_element name: (identifier) @name) @reference.call
"""

_JAVASCRIPT_EXTRA = _JSX_REFERENCES + _JS_IMPORTS
_TSX_EXTRA = _TYPESCRIPT_EXTRA + _JSX_REFERENCES + _JS_IMPORTS

GRAMMARS: tuple[Grammar, ...] = (
    Grammar("python", "tree_sitter_python", "language", (".py", ".pyi"), _PYTHON_IMPORTS),
    Grammar("javascript", "tree_sitter_javascript", "language", (".js", ".jsx", ".mjs", ".cjs"), _JAVASCRIPT_EXTRA),
    Grammar("typescript", "tree_sitter_typescript", "language_typescript", (".ts", ".mts", ".cts"),
            _TYPESCRIPT_EXTRA + _JS_IMPORTS),
    Grammar("tsx", "tree_sitter_typescript", "language_tsx", (".tsx",), _TSX_EXTRA),
    Grammar("go", "tree_sitter_go", "language", (".go",)),
    Grammar("rust", "tree_sitter_rust", "language", (".rs",)),
    Grammar("java", "tree_sitter_java", "language", (".java",)),
    Grammar("c", "tree_sitter_c", "language", (".c", ".h"), _C_REFERENCES),
    Grammar("cpp", "tree_sitter_cpp", "language", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"), _CPP_REFERENCES),
    Grammar("ruby", "tree_sitter_ruby", "language", (".rb",)),
    Grammar("elixir", "tree_sitter_elixir", "language", (".ex", ".exs"), _ELIXIR_ALIASES),
)  # fmt: skip

_BY_EXTENSION = {extension: grammar for grammar in GRAMMARS for extension in grammar.extensions}


def grammar_for(path: str) -> Grammar | None:
    dot = path.rfind(".")
    return _BY_EXTENSION.get(path[dot:].lower()) if dot >= 0 else None


def grammar_loads(grammar: Grammar) -> bool:
    """Whether `grammar`'s wheel is installed and built for this tree-sitter (its tag query is not compiled)."""
    try:
        module = importlib.import_module(grammar.module)
        Language(getattr(module, grammar.function)())
    except (ImportError, ValueError):
        return False
    return True


def first_error_line(relative: str, text: str) -> int | None:
    """The 1-based line of the first syntax error in `text` (an unparsable or a missing piece); None when it parses
    or no grammar reads the file."""
    grammar = grammar_for(relative)
    loaded = parser_and_query(grammar) if grammar else None
    if loaded is None:
        return None
    node = loaded[0].parse(text.encode("utf-8")).root_node
    if not node.has_error:
        return None
    while not (node.is_error or node.is_missing):
        child = next((child for child in node.children if child.has_error or child.is_missing), None)
        if child is None:
            break
        node = child
    return node.start_point[0] + 1


@cache
def parser_and_query(grammar: Grammar) -> tuple[Parser, Query] | None:
    """The parser and tag query for `grammar`, or None when its wheel is not installed (made once per process:
    compiling a tag query takes milliseconds)."""
    try:
        module = importlib.import_module(grammar.module)
    except ImportError:
        return None
    language = Language(getattr(module, grammar.function)())
    shipped = Path(module.__file__).parent / "queries" / "tags.scm"
    source = shipped.read_text(encoding="utf-8") if shipped.exists() else ""
    return Parser(language), Query(language, source + grammar.extra)
