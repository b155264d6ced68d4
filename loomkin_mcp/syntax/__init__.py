"""Syntax: the tree-sitter grammar for each file, its tag query (definitions and references), and the first syntax
error of a text. Shared by the repo map, the symbol tools and the edit check; importing it loads tree-sitter."""

from ._grammars import GRAMMARS, Grammar, first_error_line, grammar_for, grammar_loads, parser_and_query

__all__ = ["GRAMMARS", "Grammar", "first_error_line", "grammar_for", "grammar_loads", "parser_and_query"]
