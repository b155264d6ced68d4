"""The one place where a path from a model becomes a real path on disk.

Every tool that touches the file system resolves its paths here: relative to the project
root, symlinks resolved, inside the root by path components (so `/proj-evil` is not inside
`/proj`), and, for writes, checked against LOOMKIN.md and the files loomkin never writes.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

from .._errors import PathRefused, one_line
from ..config import CONFIG_FILENAME, user_config_dir
from ._glob import glob_matches
from ._rules import RULES_FILENAMES, Rules

# Longest path we accept, in characters (Linux PATH_MAX is 4096 bytes).
MAX_PATH_LENGTH = 4096

# Files that carry the project's own permissions: a model must not grant itself more.
PROTECTED_FILES = (*RULES_FILENAMES, CONFIG_FILENAME)
# loomkin's own state (caches, the decision store).
STATE_DIR = ".loomkin"
# Compared as macOS and Windows file systems do (case- and normalisation-insensitive), so `.LOOMKIN.TOML`
# or a decomposed `.git` cannot stand in for the real one there.
_PROTECTED_KEYS = {unicodedata.normalize("NFC", name).casefold() for name in PROTECTED_FILES}


# System places no project is (a client's roots naming one are refused), and those beneath which none is.
_SYSTEM_ROOTS = frozenset(
    Path(p) for p in ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys",
                      "/tmp", "/usr", "/var")
)  # fmt: skip
_SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"), Path("/etc"))


def refused_root(path: Path) -> str | None:
    """Why `path` may not be served as a project (a clause), or None: system places, the home directory, and
    any directory holding or inside the person's loomkin config (its trust store would be the model's to write)."""
    real = Path(os.path.realpath(path))
    if not real.is_dir():
        return "it is not a directory"
    if real in _SYSTEM_ROOTS or any(real.is_relative_to(tree) for tree in _SYSTEM_TREES):
        return "it is a system directory"
    if real == Path(os.path.realpath(Path.home())):
        return "it is the home directory"
    config = Path(os.path.realpath(user_config_dir()))
    if config.is_relative_to(real) or real.is_relative_to(config):
        return f"it holds your loomkin config ({config})"
    return None


class PathGuard:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))

    def resolve(self, raw: str, *, what: str = "path") -> Path:
        """The real absolute path for `raw`; refuses anything that would leave the root."""
        return self._resolve(raw, what)[1]

    def resolve_for_write(
        self, raw: str, rules: Rules, protected: frozenset[tuple[int, int]] = frozenset(), *, what: str = "path"
    ) -> Path:
        """`resolve`, then refuse what may not be written under the name given *or* the name it reaches.

        `protected` holds the (device, inode) of the files the rules and the config were read from: a
        link or hard link to one (`AGENTS.md` when `LOOMKIN.md -> AGENTS.md`) is that file too.
        """
        lexical, real = self._resolve(raw, what)
        for path in dict.fromkeys((lexical, real)):
            self.check_writable(path, rules)
        if protected:
            try:
                info = os.stat(real)
            except OSError:
                return real
            if (info.st_dev, info.st_ino) in protected:
                raise PathRefused(
                    f"'{_short(raw)}' is the project's {_rules_name(rules)} or .loomkin.toml under another name, "
                    "which tools may not change; edit it yourself."
                )
        return real

    def _resolve(self, raw: str, what: str) -> tuple[Path, Path]:
        if not isinstance(raw, str) or not raw.strip():
            raise PathRefused(f"{what} is empty; give a path relative to the project root, e.g. `lib/app.ex`.")
        if "\x00" in raw:
            raise PathRefused(f"{what} contains a NUL byte; remove it and give a plain relative path.")
        if len(raw) > MAX_PATH_LENGTH:
            raise PathRefused(f"{what} is {len(raw)} characters long; paths over {MAX_PATH_LENGTH} are refused.")
        if raw.startswith("~"):
            raise PathRefused(
                f"'{_short(raw)}' starts with `~`, which is not expanded; give a path relative to the project root."
            )
        candidate = Path(raw) if os.path.isabs(raw) else self.root / raw
        lexical = Path(os.path.normpath(candidate))
        if not lexical.is_relative_to(self.root):
            raise PathRefused(
                f"'{_short(raw)}' is outside the project root {self.root}; only paths inside the project can be used."
            )
        real = Path(os.path.realpath(candidate))
        if not real.is_relative_to(self.root):
            raise PathRefused(
                f"'{_short(raw)}' leads through a symlink to {real}, outside the project root; "
                "only paths inside the project can be used."
            )
        if self._has_unresolved_link(real):
            raise PathRefused(f"'{_short(raw)}' is part of a symlink loop; fix or remove the link.")
        return lexical, real

    def _has_unresolved_link(self, real: Path) -> bool:
        """realpath resolves every link it can; one left on the way is a loop."""
        for part in (real, *real.parents):
            if part == self.root:
                return False
            if part.is_symlink():
                return True
        return False

    def relative(self, path: Path) -> str:
        """POSIX path relative to the root, as shown to the model ('.' for the root)."""
        relative = path.relative_to(self.root).as_posix()
        return relative or "."

    def check_writable(self, path: Path, rules: Rules) -> None:
        """Refuse writes into .git/, to loomkin's own files, or against LOOMKIN.md's write rules."""
        relative = self.relative(path)
        hidden = next((char for char in relative if unicodedata.category(char) in ("Cc", "Cf")), None)
        if hidden is not None:
            raise PathRefused(
                f"'{_short(relative)}' contains the invisible or control character U+{ord(hidden):04X}; "
                "name files with visible characters only."
            )
        parts = _folded_parts(relative)
        if ".git" in parts:
            raise PathRefused(f"'{relative}' is inside .git/, which loomkin never writes; use the git tool instead.")
        if is_protected(relative):
            raise PathRefused(
                f"'{relative}' holds the project's own loomkin settings, which tools may not change; edit it yourself."
            )
        if rules.unreadable:
            raise PathRefused(
                f"writes are held because {_rules_name(rules)} {rules.unreadable}, so its denials cannot be checked; "
                "the person must replace it with a regular file in the project."
            )
        denied = next((glob for glob in rules.write_denied if glob_matches(glob, relative)), None)
        if denied is not None:
            raise PathRefused(
                f"'{relative}' matches `File Write Denied: {denied}` in {_rules_name(rules)}; "
                "leave it unchanged or ask the person to edit the rule."
            )
        if rules.write_allowed and not any(glob_matches(glob, relative) for glob in rules.write_allowed):
            allowed = ", ".join(rules.write_allowed)
            raise PathRefused(
                f"'{relative}' is outside the `File Write:` paths of {_rules_name(rules)} ({allowed}); "
                "write inside those paths or ask the person to extend the rule."
            )


def is_protected(relative: str) -> bool:
    """Whether a project-relative POSIX path is one of loomkin's own settings files or under `.loomkin/`."""
    parts = _folded_parts(relative)
    return "/".join(parts) in _PROTECTED_KEYS or parts[0] == STATE_DIR


def _folded_parts(relative: str) -> list[str]:
    return [unicodedata.normalize("NFC", part).casefold() for part in relative.split("/")]


def _rules_name(rules: Rules) -> str:
    return rules.path.name if rules.path else "LOOMKIN.md"


def _short(raw: str, limit: int = 120) -> str:
    """`raw` fit for a one-line message: control characters escaped, long paths cut."""
    text = one_line(raw)
    return text if len(text) <= limit else text[: limit - 1] + "…"
