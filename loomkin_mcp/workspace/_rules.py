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

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .._fs import OwnFileRefused, read_own_file

RULES_FILENAMES = ("LOOMKIN.md", ".loomkin.md", "loomkin.md")
# Instructions a model reads at every start: a real LOOMKIN.md is a few KB.
MAX_RULES_BYTES = 256 * 1024
# A heading or a rule is a line; longer lines are prose (and the line patterns would take time in them).
MAX_RULE_LINE_CHARS = 2000
# The sections whose items loomkin-mcp enforces (headings compared in lower case): never left out of a summary.
ENFORCED_SECTIONS = ("rules", "allowed operations", "denied operations")

logger = logging.getLogger("loomkin_mcp.rules")

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
    unreadable: str | None = None
    """Why the rules file that is there is not read (a directory, a dangling link…): then loomkin fails
    closed — no shell command runs and no write is allowed until it is fixed."""


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
        if len(line) > MAX_RULE_LINE_CHARS:
            continue  # prose, not a rule; and the line patterns below need not look at it
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(2).strip().lower()
            continue
        if section == "rules":
            item = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line).strip()
            if item:
                rules.append(item)
            continue
        if section not in ENFORCED_SECTIONS[1:]:
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
    """The project's LOOMKIN.md, re-read whenever it changes (a stat per access).

    Read through `read_own_file`: a regular file inside the root, at most 256 KB (the rest is cut
    with a warning), never a FIFO, a device or a link leading out. Its inode is kept so that the
    guard protects it under every name that reaches it.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._stamp: tuple[str, int, int, int] | None = None
        self._rules = Rules()
        self.identity: tuple[int, int] | None = None
        """(st_dev, st_ino) of the file the rules came from."""

    def current(self) -> Rules:
        path, stamp = self._locate()
        if stamp != self._stamp:
            self._stamp = stamp
            self._rules = Rules() if path is None else self._read(path)
        return self._rules

    def _locate(self) -> tuple[Path | None, tuple[str, int, int, int] | None]:
        for name in RULES_FILENAMES:
            path = self._root / name
            try:
                info = os.stat(path)
            except OSError:
                try:
                    os.lstat(path)  # a dangling or looping link still names the rules file: say why it is not read
                except OSError:
                    continue
                return path, (name, -1, -1, -1)
            return path, (name, info.st_mtime_ns, info.st_size, info.st_ino)
        return None, None

    def _read(self, path: Path) -> Rules:
        self.identity = None
        try:
            found = read_own_file(path, self._root, MAX_RULES_BYTES)
        except OwnFileRefused as exc:
            logger.warning("%s is not read because %s; replace it with a regular file in the project.", path.name, exc)
            return Rules(path=path, unreadable=f"is not read because {exc}")
        if found is None:
            if os.path.lexists(path):  # a dangling link still names the rules file: not an absent one
                return Rules(path=path, unreadable="is not read because it is a link to nothing")
            return Rules()
        self.identity = found.identity
        text = found.data.decode("utf-8", errors="replace")
        if found.truncated:
            text = text[: text.rfind("\n") + 1] or text
            logger.warning(
                "%s is over %d KB; only its first %d KB are used, so shorten it.",
                path.name, MAX_RULES_BYTES >> 10, MAX_RULES_BYTES >> 10,
            )  # fmt: skip
            text += f"\n\n(loomkin-mcp: {path.name} was cut at {MAX_RULES_BYTES >> 10} KB.)\n"
        return parse_rules(text, path)
