"""Symbols by name path: a file's definitions from its language server or tree-sitter, found, read and edited."""

from ._model import NamePath, Symbol
from ._service import EditMode, FileSymbols, SymbolService

__all__ = ["EditMode", "FileSymbols", "NamePath", "Symbol", "SymbolService"]
