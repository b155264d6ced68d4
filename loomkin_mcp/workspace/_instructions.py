"""The instruction files people already keep beside LOOMKIN.md, and fitting instructions into a budget.

AGENTS.md, CLAUDE.md, `.cursorrules`, `.cursor/rules/*` and the like are read as instructions for
the model, never as permissions: only LOOMKIN.md carries rules loomkin-mcp enforces. They are
project files like any other (maybe an attacker's), so they are read as LOOMKIN.md is: regular
files inside the root, no link followed out, at most 256 KB each.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._fs import OwnFileRefused, read_own_file
from ._rules import MAX_RULES_BYTES

logger = logging.getLogger("loomkin_mcp.rules")

# Single files, in the order they are shown; `.cursor/rules/` is a directory of them.
CONVENTION_FILES = (
    "AGENTS.md",
    "CLAUDE.md",
    "GEMINI.md",
    ".cursorrules",
    ".windsurfrules",
    ".github/copilot-instructions.md",
)
CURSOR_RULES_DIR = ".cursor/rules"
_CURSOR_RULE_SUFFIXES = (".mdc", ".md")
# A directory of rules is a few files; a planted one of thousands is not read past this.
_MAX_CURSOR_RULES = 50

_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Instructions:
    name: str
    """The file's path relative to the root, as shown to the model."""
    text: str


class ConventionFiles:
    """The convention files present, re-read when any of them changes (a stat each per access)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._stamp: tuple[tuple[str, int, int, int], ...] | None = None
        self._files: list[Instructions] = []

    def current(self) -> list[Instructions]:
        names = self._names()
        stamp = tuple(_stamp(self._root, name) for name in names)
        if stamp != self._stamp:
            self._stamp = stamp
            self._files = [found for name in names if (found := self._read(name)) is not None]
        return self._files

    def _names(self) -> list[str]:
        names = list(CONVENTION_FILES)
        try:
            with os.scandir(self._root / CURSOR_RULES_DIR) as entries:
                rules = sorted(e.name for e in entries if e.name.endswith(_CURSOR_RULE_SUFFIXES))
        except OSError:
            rules = []
        return names + [f"{CURSOR_RULES_DIR}/{name}" for name in rules[:_MAX_CURSOR_RULES]]

    def _read(self, name: str) -> Instructions | None:
        try:
            found = read_own_file(self._root / name, self._root, MAX_RULES_BYTES)
        except OwnFileRefused as exc:
            logger.warning("%s is not read because %s.", name, exc)
            return None
        if found is None:
            return None
        text = found.data.decode("utf-8", errors="replace")
        if found.truncated:
            text = text[: text.rfind("\n") + 1] + f"\n(loomkin-mcp: {name} was cut at {MAX_RULES_BYTES >> 10} KB.)\n"
        return Instructions(name, text) if text.strip() else None


def _stamp(root: Path, name: str) -> tuple[str, int, int, int]:
    try:
        info = os.lstat(root / name)
    except OSError:
        return (name, -1, -1, -1)
    return (name, info.st_mtime_ns, info.st_size, info.st_ino)


def abridge(text: str, max_chars: int, keep: Callable[[str], bool], read_rest: str) -> str:
    """`text` within `max_chars`, never cut silently.

    Markdown sections whose heading `keep` accepts stay whole; the others follow in order while they
    fit, the first that does not is cut at a line with a marker, and any after it are named in a last
    line. `read_rest` tells the model where the whole text is.
    """
    if len(text) <= max_chars:
        return text
    sections = _sections(text)
    room = max_chars - sum(len(body) for heading, body in sections if keep(heading))
    out: list[str] = []
    left_out: list[str] = []
    cut = False
    for heading, body in sections:
        if keep(heading):
            out.append(body)
        elif not cut and len(body) <= room:
            out.append(body)
            room -= len(body)
        elif not cut and room > 200:
            part = body[: max(body.rfind("\n", 0, room - 120), body.rfind(" ", 0, room - 120), 0)].rstrip()
            out.append(f"{part}\n[… {len(body) - len(part):,} more characters here; {read_rest}.]\n")
            cut = True
        else:
            cut = True
            left_out.append(heading or "(the opening text)")
    if left_out:
        shown = ", ".join(f'"{heading}"' for heading in left_out[:10]) + (" …" if len(left_out) > 10 else "")
        out.append(f"\n[Not shown, for lack of room: {shown}; {read_rest}.]\n")
    return "".join(out)


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, the text from that heading to the next), the text before the first heading under ""."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines(keepends=True):
        heading = _HEADING.match(line.rstrip("\n")) if len(line) < 2000 else None
        if heading:
            sections.append((heading.group(1).strip(), []))
        sections[-1][1].append(line)
    return [(heading, "".join(lines)) for heading, lines in sections if lines]
