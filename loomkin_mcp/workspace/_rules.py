"""LOOMKIN.md: free-form instructions plus `Rules`, `Allowed Operations` and `Denied Operations`.

```markdown
## Allowed Operations
- Shell: `mix *`, `git *`
- File Write: `lib/**`, `test/**`
- File Write Denied: `config/runtime.exs`, `.env*`
```

Items are the backticked values of a bullet, or its comma-separated words when none is
backticked. Under `Denied Operations`, `Shell:` and `File Write:` bullets deny.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

RULES_FILENAMES = ("LOOMKIN.md", ".loomkin.md", "loomkin.md")

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^\s*[-*+]\s+(?:\*\*)?([A-Za-z ]+?)(?:\*\*)?\s*:\s*(?:\*\*)?\s*(.*)$")
_BACKTICKED = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Rules:
    """What LOOMKIN.md says; `Rules()` when there is no such file."""

    path: Path | None = None
    text: str = ""
    rules: tuple[str, ...] = ()
    shell_allowed: tuple[str, ...] = ()
    shell_denied: tuple[str, ...] = ()
    write_allowed: tuple[str, ...] = ()
    write_denied: tuple[str, ...] = ()
    other_allowed: tuple[str, ...] = field(default=())
    other_denied: tuple[str, ...] = field(default=())


def parse_rules(text: str, path: Path | None = None) -> Rules:
    section = ""
    rules: list[str] = []
    lists: dict[str, list[str]] = {
        "shell_allowed": [],
        "shell_denied": [],
        "write_allowed": [],
        "write_denied": [],
        "other_allowed": [],
        "other_denied": [],
    }
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(2).strip().lower()
            continue
        if section == "rules":
            item = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line).strip()
            if item:
                rules.append(item)
            continue
        if section not in ("allowed operations", "denied operations"):
            continue
        denied = section == "denied operations"
        bullet = _BULLET.match(line)
        if not bullet:
            if line.strip():
                lists["other_denied" if denied else "other_allowed"].append(line.strip().lstrip("-*+ "))
            continue
        kind, values = bullet.group(1).strip().lower(), _items(bullet.group(2))
        if kind == "shell":
            lists["shell_denied" if denied else "shell_allowed"].extend(values)
        elif kind == "file write denied" or (kind == "file write" and denied):
            lists["write_denied"].extend(values)
        elif kind == "file write":
            lists["write_allowed"].extend(values)
        else:
            lists["other_denied" if denied else "other_allowed"].append(line.strip().lstrip("-*+ "))
    return Rules(path=path, text=text, rules=tuple(rules), **{key: tuple(value) for key, value in lists.items()})


def _items(value: str) -> list[str]:
    backticked = _BACKTICKED.findall(value)
    if backticked:
        return [item.strip() for item in backticked if item.strip()]
    return [item.strip() for item in value.split(",") if item.strip()]


class RulesFile:
    """The project's LOOMKIN.md, re-read whenever it changes (a stat per access)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._stamp: tuple[str, int, int] | None = None
        self._rules = Rules()

    def current(self) -> Rules:
        path, stamp = self._locate()
        if stamp != self._stamp:
            self._stamp = stamp
            self._rules = Rules() if path is None else self._read(path)
        return self._rules

    def _locate(self) -> tuple[Path | None, tuple[str, int, int] | None]:
        for name in RULES_FILENAMES:
            path = self._root / name
            try:
                info = os.stat(path)
            except OSError:
                continue
            return path, (name, info.st_mtime_ns, info.st_size)
        return None, None

    @staticmethod
    def _read(path: Path) -> Rules:
        try:
            return parse_rules(path.read_text(encoding="utf-8", errors="replace"), path)
        except OSError:
            return Rules()
