"""Names of re-exported upstream tools and prompts: `<server>__<tool>`, short and unique.

Claude Code shows a tool as `mcp__<our server>__<name>` and Claude's API allows 64
characters; Cursor caps server + tool at 60. So a name is kept to MAX_NAME_LENGTH
characters of `[A-Za-z0-9_.-]`, and a longer or clashing one is shortened the same way
every time: cut, then `_` and six hex digits of a hash of the original.
"""

from __future__ import annotations

import hashlib
import re

SEPARATOR = "__"
MAX_NAME_LENGTH = 48
_INVALID = re.compile(r"[^A-Za-z0-9_.-]")


def sanitize(part: str) -> str:
    return _INVALID.sub("_", part) or "_"


def exported_names(server: str, originals: list[str]) -> dict[str, str]:
    """exported name -> original name, for one upstream's tools (or prompts)."""
    prefix = sanitize(server) + SEPARATOR
    taken: dict[str, str] = {}
    for original in sorted(originals):
        name = prefix + sanitize(original)
        if len(name) > MAX_NAME_LENGTH or name in taken:
            name = _shortened(prefix, original)
        taken[name] = original
    return taken


def _shortened(prefix: str, original: str) -> str:
    digest = hashlib.sha256(original.encode()).hexdigest()[:6]
    room = max(MAX_NAME_LENGTH - len(prefix) - len(digest) - 1, 1)
    return f"{prefix}{sanitize(original)[:room]}_{digest}"
