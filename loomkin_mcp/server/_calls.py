"""The latest tool calls, for the status page: arguments shortened, contents shown by size only."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

RECENT_CALLS = 50
# Arguments that carry file contents or edits: shown by size only.
CONTENT_ARGUMENTS = frozenset({"content", "old_string", "new_string", "body", "text", "message", "description"})
MAX_SHOWN_CHARS = 80


class CallLog:
    """The latest tool calls: tool, when, how long, ok or not, and their arguments shortened."""

    def __init__(self, size: int = RECENT_CALLS) -> None:
        self._calls: deque[dict[str, Any]] = deque(maxlen=size)

    def record(self, tool: str, arguments: dict[str, Any], started: float, ok: bool) -> None:
        self._calls.append({
            "tool": tool,
            "at": round(time.time() - (time.monotonic() - started), 3),
            "ms": round((time.monotonic() - started) * 1000, 1),
            "ok": ok,
            "arguments": {key: _shortened(key, value) for key, value in list(arguments.items())[:10]},
        })  # fmt: skip

    def recent(self) -> list[dict[str, Any]]:
        return list(reversed(self._calls))


def _shortened(key: str, value: Any) -> str:
    if isinstance(value, str) and (key in CONTENT_ARGUMENTS or len(value) > MAX_SHOWN_CHARS):
        return f"<{len(value):,} characters>"
    if isinstance(value, list | dict):
        return f"<{len(value)} items>"
    return str(value)[:MAX_SHOWN_CHARS]
