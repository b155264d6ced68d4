"""The symbol tools' logic: read, find and edit code by name path.

A file's symbols come from tree-sitter when one of the repo map's grammars reads it, else from its
language server (`documentSymbol`). Searches over a directory narrow the files with the repo map's
index (which files define the name). References come from the language server, else from a
whole-word search in files of the same language. Edits go through `FileService.transform`: the
file's lock, the "changed underneath" check and an atomic write; the tool around them asks for
approval and reports diagnostics.
"""

from __future__ import annotations

import os
import re
import textwrap
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import anyio

from .._errors import ToolInputError
from ._model import NamePath, Symbol

if TYPE_CHECKING:
    from ..files._service import FileService
    from ..lsp._service import LspService
    from ..repomap._service import RepoMapService
    from ..repomap._tags import FileTags
    from ..search._service import SearchService
    from ..syntax import Grammar
    from ..workspace import Workspace

EditMode = Literal["replace_body", "insert_before", "insert_after"]

# What one call reads and returns at most: files of a directory overview, characters of a result.
MAX_SYMBOL_FILE_BYTES = 4 * 1024 * 1024
MAX_RESULT_CHARS = 40_000
MAX_REFERENCES = 100
MAX_CANDIDATES = 8
_RECENT_FILES = 16


@dataclass(frozen=True)
class FileSymbols:
    path: Path
    relative: str
    text: str
    symbols: list[Symbol]
    source: str
    """Who listed them: a language server's name, or "tree-sitter"."""
    error_line: int | None = None
    """The first line tree-sitter cannot parse: the extent of what stands at or after it is uncertain."""
    line_starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        starts = [0] + [match.end() for match in re.finditer("\n", self.text)]
        object.__setattr__(self, "line_starts", starts)

    def line_of(self, offset: int) -> int:
        """The 1-based line of a string offset."""
        return bisect_right(self.line_starts, offset)

    def line_text(self, row: int) -> str:
        """The text of 0-based line `row`, without its line break."""
        end = self.line_starts[row + 1] - 1 if row + 1 < len(self.line_starts) else len(self.text)
        return self.text[self.line_starts[row] : end]

    def span(self, symbol: Symbol) -> str:
        """`4-8`, or `4-8, 2 clauses` for an Elixir function's clauses taken together."""
        first, last = self.lines(symbol)
        return f"{first}-{last}" + (f", {symbol.clauses} clauses" if symbol.clauses > 1 else "")

    def named(self, wanted: NamePath, line: int | None) -> list[Symbol]:
        """The symbols `wanted` names, only those spanning `line` when it is given."""
        found = []
        for top in self.symbols:
            for symbol in top.walk():
                first, last = self.lines(symbol)
                if wanted.matches(symbol) and (line is None or first <= line <= last):
                    found.append(symbol)
        return found

    def lines(self, symbol: Symbol) -> tuple[int, int]:
        end = max(symbol.end - 1, symbol.start)
        return self.line_of(symbol.start), self.line_of(end)

    def body(self, symbol: Symbol) -> str:
        start = self.text.rfind("\n", 0, symbol.start) + 1
        end = self.text.find("\n", max(symbol.end - 1, symbol.start))
        # Shown with plain line breaks whatever the file uses (an edit writes the file's own back).
        return self.text[start : end if end >= 0 else len(self.text)].replace("\r\n", "\n").removesuffix("\r")

    def describe(self, symbol: Symbol) -> str:
        return f"{symbol.kind} {symbol.name_path} ({self.relative}:{self.span(symbol)})"

    def parse_note(self) -> str | None:
        if self.error_line is None:
            return None
        return (
            f"{self.relative} does not parse: syntax error at line {self.error_line}; what stands at or after it may "
            "be listed with the wrong extent."
        )


class SymbolService:
    def __init__(
        self, workspace: Workspace, files: FileService, lsp: LspService, search: SearchService, repomap: RepoMapService
    ) -> None:
        self._ws = workspace
        self._files = files
        self._lsp = lsp
        self._search = search
        self._repomap = repomap
        self._recent: OrderedDict[Path, FileSymbols] = OrderedDict()
        """The last files tree-sitter read, reused while their text is the same (a parse of a 2,000-line file
        and its syntax check take ~9 ms)."""

    # -- reading --------------------------------------------------------------------------

    async def file_symbols(self, path: Path) -> FileSymbols:
        """The symbols of one file: from tree-sitter when a grammar reads it (milliseconds, and the whole range of
        every definition), else from its language server; refused when neither can."""
        relative = self._ws.relative(path)
        if _tree_sitter().parses(relative):
            text = await anyio.to_thread.run_sync(self._files.text_of, path, MAX_SYMBOL_FILE_BYTES)
            recent = self._recent.pop(path, None)
            if recent is None or recent.text != text or recent.relative != relative:
                recent = _parsed(path, relative, text)
            self._recent[path] = recent
            while len(self._recent) > _RECENT_FILES:
                self._recent.popitem(last=False)
            return recent
        if self._lsp.enabled and self._lsp.handles(path):
            answer = await self._lsp.session.document_symbols(path)
            if answer is not None:
                from ._lsp import symbols_from_lsp

                found, text, server = answer
                return FileSymbols(path, relative, text, symbols_from_lsp(found, text), server)
        raise ToolInputError(
            f"'{relative}' is in a language neither tree-sitter nor a language server reads here; "
            "use file_read and content_search on it."
        )

    async def overview(self, raw_path: str) -> str:
        path = self._ws.resolve(raw_path, what="path")
        if path.is_file():
            found = await self.file_symbols(path)
            rows = [f"{found.relative} (symbols from {found.source}):"]
            rows += [f"({note})" for note in (found.parse_note(),) if note]
            for symbol in (s for top in found.symbols for s in top.walk()):
                rows.append(f"{'  ' * (len(symbol.path) - 1)}{symbol.kind} {symbol.name_path} {found.span(symbol)}")
            if len(rows) == 1:
                rows.append("(no symbols)")
            return _capped(rows, "give a smaller file's path, or use symbol_find with depth")
        if not path.is_dir():
            raise ToolInputError(f"'{raw_path}' does not exist; use file_search to find the file or directory.")
        prefix = _prefix(self._ws.relative(path))
        names = [name for name in self._search.list_source_files() if name.startswith(prefix) and _grammar_for(name)]
        rows: list[str] = []
        size = 0
        for index, name in enumerate(names):
            try:
                found = await self.file_symbols(self._ws.root / name)
            except ToolInputError as exc:  # one unreadable file (not UTF-8, too large) is named, not fatal
                block = [f"{name}: not read: {exc}"]
            else:
                block = [f"{name}:"] + [
                    f"  {symbol.kind} {symbol.name_path} {found.span(symbol)}" for symbol in found.symbols
                ]
            if size + sum(len(row) + 1 for row in block) > MAX_RESULT_CHARS:
                rows.append(f"[{len(names) - index} more files not shown; give a subdirectory or a file for the rest]")
                break
            rows += block
            size += sum(len(row) + 1 for row in block)
        return "\n".join(rows) or f"No source files a grammar reads under '{self._ws.relative(path)}'."

    async def find(
        self, name_path: str, raw_path: str, include_body: bool, depth: int, substring: bool, line: int | None
    ) -> str:
        wanted = NamePath.parse(name_path, substring)
        if depth < 0:
            raise ToolInputError(f"depth is {depth}; give 0 (the symbol only) or more.")
        found = await self._matches(wanted, raw_path, line)
        if not found:
            return f"No symbol matches '{name_path}' in '{raw_path}'" + (f" at line {line}." if line else ".")
        rows: list[str] = []
        notes = {note for file_symbols, _ in found if (note := file_symbols.parse_note())}
        for file_symbols, symbol in found:
            rows.append(file_symbols.describe(symbol))
            if include_body:
                rows.append(file_symbols.body(symbol))
            for child in symbol.walk():
                level = len(child.path) - len(symbol.path)
                if 0 < level <= depth:
                    rows.append(f"{'  ' * level}{file_symbols.describe(child)}")
        return _capped(
            rows + [f"Note: {note}" for note in sorted(notes)],
            "narrow the name path or the path, or leave out include_body",
        )

    async def references(self, name_path: str, raw_path: str, line: int | None) -> str:
        file_symbols, symbol = await self.one(name_path, raw_path, line)
        places = None
        how = "tree-sitter"
        if self._lsp.enabled and self._lsp.handles(file_symbols.path):
            session = self._lsp.session
            # The position is sent in the text the server has: the same file, unless it changed just now.
            places = await session.reference_locations(file_symbols.path, file_symbols.text, symbol.name_at)
            how = ", ".join(spec.name for spec in self._lsp.specs() if spec.handles(file_symbols.path))
        if places is None:
            places = await anyio.to_thread.run_sync(self._textual_references, file_symbols, symbol)
            how = f"a whole-word search for `{symbol.name}` in files of the same language"
        rows: list[str] = []
        cache: dict[Path, FileSymbols | None] = {}
        for path, row in sorted(set(places), key=lambda place: (str(place[0]), place[1]))[:MAX_REFERENCES]:
            if path not in cache:
                try:
                    cache[path] = await self.file_symbols(path)
                except ToolInputError:
                    cache[path] = None
            where = cache[path]
            relative = self._ws.relative(path)
            if where is None:
                rows.append(f"{relative}:{row + 1}")
                continue
            if row >= len(where.line_starts):
                rows.append(f"{relative}:{row + 1}")
                continue
            text = where.line_text(row)
            enclosing = _innermost(where.symbols, where.line_starts[row] + len(text) - len(text.lstrip()))
            snippet = text.strip()[:160]
            inside = enclosing.name_path if enclosing is not None else "(top level)"
            rows.append(f"{relative}:{row + 1} in {inside}: {snippet}")
        title = f"{len(places)} reference(s) to {file_symbols.describe(symbol)}, found by {how}"
        if not rows:
            return f"No references to {file_symbols.describe(symbol)} (found by {how})."
        more = f"\n… {len(places) - MAX_REFERENCES} more." if len(places) > MAX_REFERENCES else ""
        return f"{title}:\n" + "\n".join(rows) + more

    def _textual_references(self, file_symbols: FileSymbols, symbol: Symbol) -> list[tuple[Path, int]]:
        grammar = _grammar_for(file_symbols.relative)
        declared = (file_symbols.path, file_symbols.line_of(symbol.name_at) - 1)
        places = []
        for hit in self._search.matching_lines(rf"\b{re.escape(symbol.name)}\b", 5000):
            same_language = _grammar_for(hit.path)
            if grammar is not None and (same_language is None or same_language.name != grammar.name):
                continue
            place = (self._ws.root / hit.path, hit.line - 1)
            if place != declared:
                places.append(place)
        if grammar is not None and grammar.family == "elixir":
            places = self._elixir_uses(places, symbol)
        return places

    def _elixir_uses(self, places: list[tuple[Path, int]], symbol: Symbol) -> list[tuple[Path, int]]:
        """Of the lines naming an Elixir function, those that use it with its arity: not its other clauses'
        definitions, not `:name` atoms or `name:` keys, not a call with another number of arguments."""
        uses: dict[Path, set[int]] = {}
        for path in {path for path, _ in places}:
            try:
                text = self._files.text_of(path, MAX_SYMBOL_FILE_BYTES)
            except ToolInputError:
                text = ""
            uses[path] = _tree_sitter().elixir_uses(text, symbol.name, symbol.arity)
        return [(path, row) for path, row in places if row in uses[path]]

    # -- finding one ----------------------------------------------------------------------

    async def _matches(self, wanted: NamePath, raw_path: str, line: int | None) -> list[tuple[FileSymbols, Symbol]]:
        path = self._ws.resolve(raw_path, what="path")
        if path.is_file():
            files = [path]
        elif path.is_dir():
            files = await self._files_defining(wanted, _prefix(self._ws.relative(path)))
        else:
            raise ToolInputError(f"'{raw_path}' does not exist; use file_search to find the file or directory.")
        found = []
        for file_path in files:
            try:
                file_symbols = await self.file_symbols(file_path)
            except ToolInputError:
                if len(files) == 1:
                    raise
                continue  # a directory search goes on past a file it cannot read
            found += [(file_symbols, symbol) for symbol in file_symbols.named(wanted, line)]
        return found

    async def _files_defining(self, wanted: NamePath, prefix: str) -> list[Path]:
        """Files under `prefix` that may define the name: the repo map's index knows who defines what, and
        ripgrep adds the files that hold the name now, which a write the watcher has not delivered yet (a few ms
        to ~100 ms) leaves out of the index."""
        index = await self._repomap.index()
        # One view of the index for both steps: the watcher may update it meanwhile.
        known = dict(index.tags)
        names = set()
        for name, tags in known.items():
            if not name.startswith(prefix):
                continue
            defined = (definition[0] for definition in tags.definitions)
            if any((wanted.last in d) if wanted.substring else (d == wanted.last) for d in defined):
                names.add(name)
        base = self._ws.root / prefix if prefix else self._ws.root
        holding = await anyio.to_thread.run_sync(self._search.files_containing, wanted.last, base, not wanted.substring)
        parseable = _tree_sitter().parses
        root = self._ws.root
        names |= {name for name in holding or [] if parseable(name) and not _as_indexed(known.get(name), root / name)}
        return [self._ws.root / name for name in sorted(names)]

    async def one(self, name_path: str, raw_path: str, line: int | None) -> tuple[FileSymbols, Symbol]:
        """The one symbol `name_path` names in the file `raw_path`; several are refused with the candidates."""
        path = self._ws.resolve(raw_path)
        if not path.is_file():
            raise ToolInputError(f"'{raw_path}' is not a file; give the file that defines the symbol.")
        found = await self._matches(NamePath.parse(name_path), raw_path, line)
        if not found:
            at = f" at line {line}" if line else ""
            raise ToolInputError(
                f"no symbol '{name_path}'{at} in '{self._ws.relative(path)}'; symbol_overview lists its symbols."
            )
        if len(found) > 1:
            listed = "; ".join(file_symbols.describe(symbol) for file_symbols, symbol in found[:MAX_CANDIDATES])
            raise ToolInputError(
                f"'{name_path}' names {len(found)} symbols ({listed}); add `line` (a line inside the one you mean)"
                " or a longer name path."
            )
        return found[0]

    # -- editing --------------------------------------------------------------------------

    async def edit(self, mode: EditMode, name_path: str, raw_path: str, text: str, line: int | None) -> str:
        """Apply the edit; returns the diff, and a warning when the file stopped parsing."""
        path = self._ws.resolve_for_write(raw_path)
        relative = self._ws.relative(path)
        seen, symbol = await self.one(name_path, raw_path, line)
        tree_sitter_view = seen.source == "tree-sitter"
        wanted = NamePath.parse(name_path)

        def change(current: str) -> str:
            target = symbol
            if current != seen.text:
                if not tree_sitter_view:
                    raise ToolInputError(
                        f"'{relative}' changed on disk while its symbols were being read; retry the edit."
                    )
                # Read again under the file's lock: the symbol is found in exactly the text that is edited.
                matches = _parsed(path, relative, current).named(wanted, line)
                if len(matches) != 1:
                    raise ToolInputError(f"'{relative}' changed on disk meanwhile; run the edit again.")
                target = matches[0]
            _require_certain_extent(_parsed(path, relative, current) if tree_sitter_view else seen, target, name_path)
            return _applied(mode, current, target, text, _blank_lines_between(relative))

        made = await anyio.to_thread.run_sync(self._files.transform, path, change, "the text")
        broke = _first_error_line(relative, made.after) is not None and _first_error_line(relative, made.before) is None
        warning = (
            "\n\nWarning: tree-sitter finds a syntax error in the file after this edit where there was none; "
            "check the text you gave."
            if broke
            else ""
        )
        return made.diff + warning


def _require_certain_extent(file_symbols: FileSymbols, symbol: Symbol, name_path: str) -> None:
    """A symbol at or after a syntax error may end anywhere: editing it could delete what follows."""
    error = file_symbols.error_line
    if error is not None and file_symbols.lines(symbol)[1] >= error:
        raise ToolInputError(
            f"'{file_symbols.relative}' does not parse (syntax error at line {error}), so where {name_path} ends is "
            "uncertain and it is not edited; fix the syntax error first (file_edit), then edit the symbol."
        )


def _as_indexed(tags: FileTags | None, path: Path) -> bool:
    """Whether the index holds `path` as it is on disk now (same mtime and size)."""
    if tags is None:
        return False
    try:
        info = os.stat(path)
    except OSError:
        return True  # gone: nothing to find in it
    return (info.st_mtime_ns, info.st_size) == (tags.mtime_ns, tags.size)


# tree-sitter, lsprotocol and the grammars load when a symbol tool is first used, never at start-up.
def _tree_sitter() -> ModuleType:
    from . import _treesitter

    return _treesitter


def _parsed(path: Path, relative: str, text: str) -> FileSymbols:
    """`text`'s symbols as tree-sitter reads them."""
    found = _tree_sitter().symbols(relative, text) or []
    return FileSymbols(path, relative, text, found, "tree-sitter", _first_error_line(relative, text))


def _first_error_line(relative: str, text: str) -> int | None:
    from ..syntax import first_error_line

    return first_error_line(relative, text)


def _grammar_for(relative: str) -> Grammar | None:
    from ..syntax import grammar_for

    return grammar_for(relative)


def _blank_lines_between(relative: str) -> tuple[int, int]:
    """Blank lines the language's style puts between definitions: (at the top level, nested). PEP 8 wants two
    around top-level definitions and one between methods; `mix format`, gofmt, rustfmt and prettier keep one."""
    grammar = _grammar_for(relative)
    return (2, 1) if grammar is not None and grammar.family == "python" else (1, 1)


def _applied(mode: EditMode, text: str, symbol: Symbol, new: str, blank_lines: tuple[int, int] = (1, 1)) -> str:
    # The file's own line breaks: a CRLF file stays CRLF, whatever breaks the new text came with.
    newline = "\r\n" if "\r\n" in text else "\n"
    new = new.replace("\r\n", "\n")
    indent = _indentation(text[text.rfind("\n", 0, symbol.start) + 1 : symbol.start])
    # A body replaces exactly the definition; inserted text is set apart from its neighbour by the blank lines the
    # language's style wants, whatever blank lines it came with.
    lines = _at_indentation(new.strip("\n").split("\n"), indent, _inner_indentation(text, symbol))
    if mode == "replace_body":
        lines[0] = lines[0][len(indent) :]  # the definition starts where the old one did, after its indentation
        start = symbol.start
        if lines[0].startswith("@"):
            # The body brings decorators: they replace the symbol's own rather than stack on them.
            start = _decorators_start(text, symbol.start)
            if start != symbol.start:
                start += len(indent)
        return text[:start] + newline.join(lines) + text[symbol.end :]
    block = "".join(f"{row}{newline}" for row in lines)
    gap = newline * (blank_lines[0] if not indent else blank_lines[1])
    if mode == "insert_before":
        at = _decorators_start(text, text.rfind("\n", 0, symbol.insert_at) + 1)
        return text[:at] + block + gap + text[at:]
    end = text.find("\n", max(symbol.end - 1, symbol.start))
    if end < 0:
        return text + newline + gap + block
    return text[: end + 1] + gap + block + text[end + 1 :]


def _decorators_start(text: str, at: int) -> int:
    """Where the decorators and annotations (`@property`, `@Override`) directly above the line at `at` begin (they
    belong to the symbol, whoever listed it); `at` itself when there are none."""
    line = text.rfind("\n", 0, at) + 1
    found = at
    while line > 0:
        above = text.rfind("\n", 0, line - 1) + 1
        if not text[above:line].strip().startswith("@"):
            break
        found = line = above
    return found


def _at_indentation(lines: list[str], indent: str, inner: int | None) -> list[str]:
    """`lines` moved to the symbol's indentation, however the model indented them: all at some indentation
    (as file_read shows them), from column 0 (relative), or the first line bare and the rest as in the file
    (what copying a definition out of the file gives)."""
    rest = [row for row in lines[1:] if row.strip()]
    already_placed = (
        not _indentation(lines[0]) and indent and rest and inner is not None
        and min(len(_indentation(row)) for row in rest) >= inner
    )  # fmt: skip
    if already_placed:
        return [indent + lines[0], *lines[1:]]
    dedented = textwrap.dedent("\n".join(lines)).split("\n")
    return [indent + row if row.strip() else "" for row in dedented]


def _inner_indentation(text: str, symbol: Symbol) -> int | None:
    """The least indentation of the symbol's lines after its first, in the file (None for a one-line symbol)."""
    body = text[symbol.start : symbol.end].split("\n")[1:]
    widths = [len(_indentation(row)) for row in body if row.strip()]
    return min(widths) if widths else None


def _indentation(row: str) -> str:
    return row[: len(row) - len(row.lstrip(" \t"))]


def _innermost(symbols: list[Symbol], offset: int) -> Symbol | None:
    best = None
    for top in symbols:
        for symbol in top.walk():
            if symbol.start <= offset < symbol.end and (best is None or symbol.start >= best.start):
                best = symbol
    return best


def _prefix(relative: str) -> str:
    return "" if relative == "." else relative + "/"


def _capped(rows: list[str], how: str) -> str:
    out: list[str] = []
    size = 0
    for index, row in enumerate(rows):
        if size + len(row) + 1 > MAX_RESULT_CHARS:
            out.append(f"[cut here: {len(rows) - index} more lines; {how}]")
            break
        out.append(row)
        size += len(row) + 1
    return "\n".join(out)
