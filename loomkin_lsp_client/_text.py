"""LSP positions (0-based line, UTF-16 code units) over Python strings, and text edits."""

from __future__ import annotations

from lsprotocol import types as lsp


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts


def offset_of(text: str, position: lsp.Position, starts: list[int] | None = None) -> int:
    """The string index of an LSP position (clamped to the text, as servers may overshoot)."""
    starts = starts if starts is not None else _line_starts(text)
    if position.line >= len(starts):
        return len(text)
    start = starts[position.line]
    end = starts[position.line + 1] - 1 if position.line + 1 < len(starts) else len(text)
    units = 0
    index = start
    while index < end and units < position.character:
        units += 2 if ord(text[index]) > 0xFFFF else 1
        index += 1
    return index


def position_of(text: str, offset: int) -> lsp.Position:
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    return lsp.Position(line=line, character=_utf16_len(text[line_start:offset]))


def position_from_user(text: str, line: int, column: int) -> lsp.Position:
    """1-based line and column in characters (what a person or model sees) to an LSP position."""
    lines = text.split("\n")
    row = min(max(line, 1), len(lines)) - 1
    prefix = lines[row][: max(column, 1) - 1]
    return lsp.Position(line=row, character=_utf16_len(prefix))


def user_column(text: str, position: lsp.Position) -> int:
    """1-based character column of an LSP position."""
    starts = _line_starts(text)
    offset = offset_of(text, position, starts)
    line_start = starts[position.line] if position.line < len(starts) else len(text)
    return offset - line_start + 1


def apply_edits(text: str, edits: list[lsp.TextEdit]) -> str:
    """Apply non-overlapping edits (given in any order), as LSP defines them."""
    starts = _line_starts(text)
    spans = sorted(
        ((offset_of(text, e.range.start, starts), offset_of(text, e.range.end, starts), e.new_text) for e in edits),
        key=lambda span: (span[0], span[1]),
    )
    out: list[str] = []
    cursor = 0
    for start, end, new_text in spans:
        if start < cursor:
            raise ValueError("the language server sent overlapping edits")
        out.append(text[cursor:start])
        out.append(new_text)
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def incremental_change(old: str, new: str) -> lsp.TextDocumentContentChangePartial:
    """One ranged change turning `old` into `new`: the span between their common prefix and suffix."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    if prefix and old[prefix - 1] == "\r":
        prefix -= 1  # never split a CRLF: a position between \r and \n means nothing to LSP
    suffix = 0
    while suffix < limit - prefix and old[len(old) - 1 - suffix] == new[len(new) - 1 - suffix]:
        suffix += 1
    if suffix and old[len(old) - suffix] == "\n" and len(old) - suffix > prefix and old[len(old) - suffix - 1] == "\r":
        suffix -= 1
    return lsp.TextDocumentContentChangePartial(
        range=lsp.Range(start=position_of(old, prefix), end=position_of(old, len(old) - suffix)),
        text=new[prefix : len(new) - suffix],
    )
