"""Symbols from a language server's `textDocument/documentSymbol` answer (a tree, or a flat list)."""

from __future__ import annotations

import re
from typing import Any

from lsprotocol import types as lsp

from loomkin_lsp_client import offset_of

from ._model import Symbol, nest


def symbols_from_lsp(found: list[Any], text: str) -> list[Symbol]:
    """The symbol tree of a documentSymbol answer for `text` (the text the server was given)."""
    flat: list[Symbol] = []
    _collect(found, text, flat)
    return nest(flat)


def _collect(found: list[Any], text: str, flat: list[Symbol]) -> None:
    for item in found:
        kind = lsp.SymbolKind(item.kind).name.lower()
        if isinstance(item, lsp.DocumentSymbol):
            start, end = offset_of(text, item.range.start), _end(text, item.range.end)
            name_at = offset_of(text, item.selection_range.start)
            flat.append(Symbol(_plain(item.name), kind, start, max(end, start), name_at))
            _collect(item.children or [], text, flat)
        else:  # SymbolInformation: the whole declaration; the name is looked for in it
            start, end = offset_of(text, item.location.range.start), _end(text, item.location.range.end)
            name = _plain(item.name)
            found_at = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])").search(text, start, max(end, start + 1))
            flat.append(Symbol(name, kind, start, max(end, start), found_at.start() if found_at else start))


def _end(text: str, position: lsp.Position) -> int:
    """Where a range ends, without the line break and blank lines some servers count into it (pylsp)."""
    end = offset_of(text, position)
    while end > 0 and text[end - 1] in " \t\r\n":
        end -= 1
    return end


def _plain(name: str) -> str:
    """clangd names an out-of-class method `Vec::size` and an overload `f(int)` in some versions: the name."""
    return name.split("(", 1)[0].rsplit("::", 1)[-1].strip() or name
