"""A project's public surface, which a map with no focus leads with: what a Python package's `__init__.py`
exports, the modules of a Mix project's `lib/*.ex` and `lib/*/*.ex`, and what a JavaScript or TypeScript
package's entry file exports (its own `export`s and those it passes on with `export … from`)."""

from __future__ import annotations

import ast
import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping

from ._tags import FileTags

# An `__init__.py` or entry file larger than this is not read for its exports (a package's is a few KB).
_MAX_ENTRY_BYTES = 512 * 1024
_TEST_DIRECTORIES = {"test", "tests", "testing"}
_JS_EXTENSIONS = (".ts", ".tsx", ".mts", ".js", ".jsx", ".mjs")
_JS_ENTRIES = ("src/index", "index", "lib/index", "src/main", "main")
_EXPORT_FROM = re.compile(r"^\s*export\s+(?:\*|\{(?P<names>[^}]*)\})\s+from\s+['\"](?P<source>[^'\"]+)['\"]", re.M)


def public_surface(tags: Mapping[str, FileTags], read: Callable[[str], str]) -> dict[str, frozenset[str]]:
    """Per file, the names of the public surface it defines. `read` gives a project file's text ("" when it
    cannot be read)."""
    found: dict[str, set[str]] = defaultdict(set)
    paths = set(tags)
    for path in paths:
        name = posixpath.basename(path)
        directory = posixpath.dirname(path)
        if name == "__init__.py" and _top_package(directory, paths):
            _python_exports(directory, read(path), tags, read, found)
        elif name == "mix.exs":
            _elixir_modules(directory, tags, found)
    for directory in sorted(_ancestors(path for path in paths if path.endswith(_JS_EXTENSIONS))):
        manifest = read(posixpath.join(directory, "package.json"))
        if manifest:
            _javascript_exports(directory, manifest, tags, read, found)
    return {path: frozenset(names) for path, names in found.items() if names}


def reading_order(paths: list[str], preferred: Collection[str]) -> list[str]:
    """The order a first index reads files in, so that a map asked for before it ends is made of those most
    likely to lead it: `preferred` (focus, read lately) and the files beside them, then those that can hold the
    public surface (a top package's modules, a Mix project's `lib/`, a JavaScript package's `src/` and `index`
    files), then the rest; within each, outside test directories first, shallow before deep."""
    present = set(paths)
    beside = {posixpath.dirname(path) for path in preferred}
    mix_projects = {posixpath.dirname(path) for path in present if posixpath.basename(path) == "mix.exs"}

    def may_be_public(path: str) -> bool:
        directory = posixpath.dirname(path)
        if path.endswith(".py"):
            return _top_package(directory, present) and posixpath.join(directory, "__init__.py") in present
        if path.endswith((".ex", ".exs")):
            return any(path.startswith(posixpath.join(project, "lib/")) for project in mix_projects)
        stem = posixpath.basename(path).split(".")[0]
        return path.endswith(_JS_EXTENSIONS) and (stem == "index" or "src" in directory.split("/"))

    def rank(path: str) -> tuple[int, bool, int, str]:
        parts = path.split("/")
        group = 0 if path in preferred or posixpath.dirname(path) in beside else 1 if may_be_public(path) else 2
        return group, any(part in _TEST_DIRECTORIES for part in parts[:-1]), len(parts), path

    return sorted(paths, key=rank)


def _ancestors(paths: Iterable[str]) -> set[str]:
    """Every directory that holds one of `paths`, at any depth ("" for the root)."""
    found = set()
    for path in paths:
        directory = posixpath.dirname(path)
        while directory not in found:
            found.add(directory)
            if not directory:
                break
            directory = posixpath.dirname(directory)
    return found


def _top_package(directory: str, paths: set[str]) -> bool:
    """A package directory whose parent is not a package, and not a test suite."""
    if not directory or posixpath.basename(directory) in _TEST_DIRECTORIES:
        return False
    return posixpath.join(posixpath.dirname(directory), "__init__.py") not in paths


def _python_exports(
    package: str, source: str, tags: Mapping[str, FileTags], read: Callable[[str], str], found: dict[str, set[str]]
) -> None:
    """`__all__` when the file gives it as a literal list or tuple; else what it imports from the package's
    own modules and defines, without a leading underscore. Each name is credited to the package's files
    that define it at their top level."""
    if len(source) > _MAX_ENTRY_BYTES:
        return
    try:
        module = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    names: set[str] = set()
    listed: set[str] | None = None
    for statement in module.body:
        if isinstance(statement, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in statement.targets
        ):
            try:
                value = ast.literal_eval(statement.value)
            except (ValueError, SyntaxError, RecursionError):
                continue
            if isinstance(value, (list, tuple)):
                listed = {item for item in value if isinstance(item, str)}
        elif isinstance(statement, ast.ImportFrom) and statement.level > 0:
            names.update(alias.asname or alias.name for alias in statement.names if alias.name != "*")
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
    exported = {name for name in (listed if listed is not None else names) if not name.startswith("_")}
    prefix = f"{package}/"
    for path, file_tags in tags.items():
        if not (path.startswith(prefix) and path.endswith(".py")):
            continue
        candidates = [(name, line) for name, line, _ in file_tags.definitions if name in exported]
        if candidates:
            lines = read(path).split("\n")
            found[path].update(
                name for name, line in candidates if 0 < line <= len(lines) and lines[line - 1][:1] not in " \t"
            )


def _elixir_modules(project: str, tags: Mapping[str, FileTags], found: dict[str, set[str]]) -> None:
    """The modules defined in the Mix project's `lib/*.ex` and `lib/*/*.ex`."""
    lib = posixpath.join(project, "lib") if project else "lib"
    for path, file_tags in tags.items():
        if not path.endswith(".ex") or not path.startswith(f"{lib}/"):
            continue
        if path[len(lib) + 1 :].count("/") <= 1:
            found[path].update(name for name, _, kind in file_tags.definitions if kind == "module")


def _javascript_exports(
    directory: str, manifest: str, tags: Mapping[str, FileTags], read: Callable[[str], str], found: dict[str, set[str]]
) -> None:
    """The entry file's exported definitions, and what it passes on from other files with `export … from`."""
    entry = _javascript_entry(directory, manifest, tags)
    if entry is None:
        return
    _exported_by(entry, None, tags, read, found, depth=0)


def _javascript_entry(directory: str, manifest: str, tags: Mapping[str, FileTags]) -> str | None:
    try:
        fields = json.loads(manifest) if len(manifest) <= _MAX_ENTRY_BYTES else {}
    except (ValueError, RecursionError):
        fields = {}
    named = [fields.get(key) for key in ("types", "module", "main")] if isinstance(fields, dict) else []
    for candidate in [*(value for value in named if isinstance(value, str)), *_JS_ENTRIES]:
        stem = posixpath.normpath(posixpath.join(directory, candidate))
        stem = re.sub(r"\.(d\.ts|ts|tsx|js|jsx|mjs|cjs)$", "", stem).replace("dist/", "src/", 1)
        for extension in _JS_EXTENSIONS:
            if f"{stem}{extension}" in tags:
                return f"{stem}{extension}"
    return None


def _exported_by(
    path: str,
    wanted: set[str] | None,
    tags: Mapping[str, FileTags],
    read: Callable[[str], str],
    found: dict[str, set[str]],
    depth: int,
) -> None:
    """Definitions of `path` on an `export` line (only `wanted` ones, when given), and those it re-exports."""
    source = read(path)
    if depth > 4 or len(source) > _MAX_ENTRY_BYTES:
        return
    lines = source.split("\n")
    for name, line, _ in tags[path].definitions:
        if (
            (wanted is None or name in wanted)
            and 0 < line <= len(lines)
            and lines[line - 1].lstrip().startswith("export")
        ):
            found[path].add(name)
    for match in _EXPORT_FROM.finditer(source):
        target = _resolve_js(path, match["source"], tags)
        if target is None:
            continue
        names = None
        if match["names"] is not None:
            names = {part.split(" as ")[0].strip() for part in match["names"].split(",") if part.strip()}
        _exported_by(target, names if wanted is None else (names or wanted) & wanted, tags, read, found, depth + 1)


def _resolve_js(importer: str, specifier: str, tags: Mapping[str, FileTags]) -> str | None:
    if not specifier.startswith("."):
        return None
    stem = posixpath.normpath(posixpath.join(posixpath.dirname(importer), specifier))
    stem = re.sub(r"\.(js|jsx|mjs)$", "", stem)
    for candidate in (stem, f"{stem}/index"):
        for extension in _JS_EXTENSIONS:
            if f"{candidate}{extension}" in tags:
                return f"{candidate}{extension}"
    return None
