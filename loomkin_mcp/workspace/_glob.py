"""Glob patterns over project-relative POSIX paths, as LOOMKIN.md and .gitignore write them.

`*` and `?` stay within one path component, `**` crosses components, `{a,b}` is
alternation, `[...]` a character class. A pattern without a `/` matches the name at any
depth (`.env*` denies `apps/web/.env` too); a pattern with one is anchored at the root.
A pattern also covers everything below a directory it matches (`lib` covers `lib/a.ex`).

Patterns come from files anyone may have written (`.gitignore`, LOOMKIN.md), and are matched
against names anyone may have chosen, so they are compiled for RE2, whose time is linear in the
name: `*a*a*a*a*a*a*a*a*a*a*a*a*b` against a 60-character name costs microseconds, not a
backtracking engine's minutes with the GIL held.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Protocol

import re2


class GlobMatcher(Protocol):
    def fullmatch(self, text: str) -> object | None: ...


@lru_cache(maxsize=1024)
def compile_glob(pattern: str, anchored: bool | None = None) -> GlobMatcher:
    """`anchored=None` decides as the module doc says; True/False forces it (`/build` in .gitignore)."""
    if anchored is None:
        anchored = "/" in pattern.strip("/")
    body = _translate(pattern.strip("/"))
    prefix = "" if anchored else "(?:.*/)?"
    try:
        return re2.compile(rf"(?s){prefix}{body}(?:/.*)?")
    except re2.error:
        # A malformed class such as `[z-a]`: the pattern stands for its own text.
        return re2.compile(rf"(?s){prefix}{re.escape(pattern.strip('/'))}(?:/.*)?")


def glob_matches(pattern: str, relative_path: str) -> bool:
    return compile_glob(pattern).fullmatch(relative_path) is not None


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[" and (end := pattern.find("]", i + 2)) != -1:
            inner = pattern[i + 1 : end]
            negate = inner[:1] in ("!", "^")
            inner = inner[1:] if negate else inner
            out.append(f"[{'^' if negate else ''}{inner.replace(chr(92), chr(92) * 2)}]")
            i = end + 1
        elif char == "{" and (end := pattern.find("}", i)) != -1:
            options = pattern[i + 1 : end].split(",")
            out.append("(?:" + "|".join(_translate(option) for option in options) + ")")
            i = end + 1
        elif char == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)
