"""Which well-known language servers to run when the config names none."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ._languages import (
    EXTENSION_LANGUAGE,
    INSTALL_HINTS,
    KNOWN_SERVERS,
    OPTIONAL_LANGUAGES,
    find_executable,
    language_of,
)
from ._spec import ServerSpec

# Directories that hold dependencies or build output, not the project's own sources.
_SKIP_DIRS = {"node_modules", "_build", "deps", "target", "build", "dist", "vendor", "__pycache__", "venv"}
_MAX_ENTRIES = 20_000


def languages_present(root: Path) -> set[str]:
    """Language ids of the project's files (a bounded walk that skips hidden and dependency dirs)."""
    return {language for _, language in _source_files(root)}


def first_file_for(root: Path, spec: ServerSpec) -> Path | None:
    """A file of the project that `spec` handles (the same bounded walk), to ask the server something real."""
    return next((path for path, _ in _source_files(root) if spec.handles(path)), None)


def _source_files(root: Path) -> Iterator[tuple[Path, str]]:
    """The project's regular files with a known language, as (path, language id); hidden and dependency
    directories skipped, links not followed, at most _MAX_ENTRIES entries looked at."""
    seen = 0
    stack = [root]
    while stack and seen < _MAX_ENTRIES:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False) and (language := language_of(entry.name)):
                yield Path(entry.path), language


def detect_servers(root: Path, present: set[str] | None = None) -> list[ServerSpec]:
    """For each language in the project, the first known server installed outside it (the person's own)."""
    present = languages_present(root) if present is None else present
    covered: set[str] = set()
    specs = []
    for known in KNOWN_SERVERS:
        if not (known.languages & present) - covered:
            continue
        executable = find_executable(known.command, outside=root)
        if executable is None:
            continue
        specs.append(
            ServerSpec.build(
                known.name,
                executable,
                tuple(sorted(known.languages)),
                args=known.args,
                root_markers=known.root_markers,
                settings=known.settings({}),
                loaded_log=known.loaded_log,
            )
        )
        covered |= known.languages
    return specs


def uncovered_languages(present: set[str], specs: list[ServerSpec]) -> dict[str, list[str]]:
    """Languages of the project no server handles, grouped by how to install one: {install hint: languages}.
    Optional languages (a project's YAML, JSON, shell scripts…) are not counted as missing."""
    handled = {language for spec in specs for language in spec.languages}
    handled |= {EXTENSION_LANGUAGE.get(extension) for spec in specs for extension in spec.extensions}
    missing: dict[str, list[str]] = {}
    for language in sorted(present - handled - OPTIONAL_LANGUAGES):
        hint = INSTALL_HINTS.get(language, f"install a language server for {language} and add it to [lsp].servers")
        missing.setdefault(hint, []).append(language)
    return missing
