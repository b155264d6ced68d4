"""Each editor's MCP config for loomkin-mcp over stdio, in that editor's own schema.

The files in `editor-configs/` are these snippets with placeholder paths (a test keeps them
identical); `loomkin-mcp editor-config EDITOR` prints them with this install's paths.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

COMMAND_PLACEHOLDER = "/absolute/path/to/loomkin-mcp/.venv/bin/loomkin-mcp"
URL_PLACEHOLDER = "http://127.0.0.1:4200/mcp"  # `loomkin-mcp --http` (make run)
ROOT_PLACEHOLDER = "/absolute/path/to/your/project"
WORKSPACE_FOLDER = "${workspaceFolder}"  # expanded by the editor itself


@dataclass(frozen=True)
class Editor:
    name: str
    file: str
    """Where the sample lives under `editor-configs/`."""
    servers_key: str
    root: str | None
    """`--root` value: the project path, the editor's own variable, or None (started in the project)."""
    typed: bool = False
    """The schema wants `"type": "stdio"` (or `"http"`)."""
    env: bool = True
    url_key: str | None = "url"
    """How the editor names a remote server's address; None when it cannot connect to a URL."""
    destination: str = ""
    """Where the person puts the snippet, in words (`{command}`: this install's command)."""
    project_file: str | None = None
    """The config file `setup` writes, inside the project; None when it lives in the person's home."""


EDITORS: dict[str, Editor] = {
    editor.name: editor
    for editor in (
        Editor(
            "claude-desktop",
            "claude-desktop/claude_desktop_config.json",
            "mcpServers",
            ROOT_PLACEHOLDER,
            url_key=None,
            destination="claude_desktop_config.json (Claude Desktop: Settings → Developer → Edit "
            "Config; ~/Library/Application Support/Claude/ on macOS, %APPDATA%\\Claude\\ on Windows)",
        ),
        Editor(
            "cursor",
            "cursor/.cursor/mcp.json",
            "mcpServers",
            WORKSPACE_FOLDER,
            destination=".cursor/mcp.json in the project (or ~/.cursor/mcp.json for every project)",
            project_file=".cursor/mcp.json",
        ),
        Editor(
            "zed",
            "zed/settings.json",
            "context_servers",
            ROOT_PLACEHOLDER,
            destination="Zed's settings.json (~/.config/zed/settings.json; zed: open settings)",
        ),
        Editor(
            "vscode",
            "vscode/.vscode/mcp.json",
            "servers",
            WORKSPACE_FOLDER,
            typed=True,
            env=False,
            destination=".vscode/mcp.json in the project",
            project_file=".vscode/mcp.json",
        ),
        Editor(
            "claude-code",
            "claude-code/.mcp.json",
            "mcpServers",
            None,
            typed=True,
            destination=".mcp.json in the project (or run `claude mcp add loomkin -- {command} --stdio`)",
            project_file=".mcp.json",
        ),
        Editor(
            "windsurf",
            "windsurf/mcp_config.json",
            "mcpServers",
            ROOT_PLACEHOLDER,
            url_key="serverUrl",
            destination="~/.codeium/windsurf/mcp_config.json",
        ),
    )
}


def snippet(editor: Editor, command: str = COMMAND_PLACEHOLDER, root: str = ROOT_PLACEHOLDER) -> dict[str, Any]:
    args = ["--stdio"]
    if editor.root is not None:
        args += ["--root", root if editor.root == ROOT_PLACEHOLDER else editor.root]
    server: dict[str, Any] = {"type": "stdio"} if editor.typed else {}
    server |= {"command": command, "args": args}
    if editor.env:
        server["env"] = {}
    return {editor.servers_key: {"loomkin": server}}


def http_file(editor: Editor) -> str:
    """Where the sample for the HTTP daemon lives: beside the stdio one, `-http` before the suffix."""
    stem, _, suffix = editor.file.rpartition(".")
    return f"{stem}-http.{suffix}"


def http_snippet(editor: Editor, url: str = URL_PLACEHOLDER) -> dict[str, Any]:
    """The editor's config for the HTTP daemon (`loomkin-mcp --http`)."""
    assert editor.url_key is not None, f"{editor.name} cannot connect to a URL"
    server: dict[str, Any] = {"type": "http"} if editor.typed else {}
    server[editor.url_key] = url
    return {editor.servers_key: {"loomkin": server}}


def config_file(editor: Editor, root: Path) -> Path:
    """The config file `setup` changes: the project's own, or the one in the person's home."""
    return root / editor.project_file if editor.project_file is not None else home_config(editor)


def read_config(editor: Editor, root: Path, limit: int) -> str:
    """The editor's config file ("" when there is none), at most `limit` bytes; the project's opened beneath
    the root, never through a link (a cloned project may hold `.mcp.json -> ~/.config/…`)."""
    from .._fs import open_file_beneath, open_root

    try:
        if editor.project_file is None:
            with open(home_config(editor), "rb") as handle:
                return handle.read(limit).decode("utf-8")
        root_fd = open_root(root)
        try:
            fd = open_file_beneath(root_fd, Path(editor.project_file).parts, os.O_RDONLY)
        finally:
            os.close(root_fd)
        with os.fdopen(fd, "rb") as handle:
            return handle.read(limit).decode("utf-8")
    except FileNotFoundError:
        return ""


def write_config(editor: Editor, root: Path, text: str) -> None:
    """Replace the editor's config file with `text` at once (the project's written beneath the root)."""
    from .._fs import atomic_write, atomic_write_at, open_directory_beneath, open_root

    if editor.project_file is None:
        target = home_config(editor)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, text.encode())
        return
    *directories, name = Path(editor.project_file).parts
    root_fd = open_root(root)
    try:
        parent = open_directory_beneath(root_fd, tuple(directories), create=True)
        try:
            atomic_write_at(parent, name, text.encode())
        finally:
            os.close(parent)
    finally:
        os.close(root_fd)


def home_config(editor: Editor) -> Path:
    """The config file in the person's home for the editors whose config lives there."""
    from ..config import xdg_home

    home = Path(os.environ.get("HOME") or "~").expanduser()
    config = xdg_home("XDG_CONFIG_HOME", ".config")
    if editor.name == "claude-desktop":
        if sys.platform == "darwin":
            return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
        if sys.platform == "win32":
            return Path(os.environ.get("APPDATA") or home) / "Claude" / "claude_desktop_config.json"
        return config / "Claude" / "claude_desktop_config.json"
    if editor.name == "zed":
        return config / "zed" / "settings.json"
    return home / ".codeium" / "windsurf" / "mcp_config.json"


class NotPlainJson(ValueError):
    """The editor's config file holds something `setup` cannot rewrite without losing it."""


def merged(existing: str, entry: dict[str, Any]) -> str:
    """`existing` (a JSON object, or "" for no file) with the `loomkin` server of `entry` put in, everything
    else kept as it was; indented as the editors' own files are."""
    try:
        data = json.loads(existing) if existing.strip() else {}
    except ValueError:
        raise NotPlainJson("it is not plain JSON (comments or trailing commas?)") from None
    if not isinstance(data, dict):
        raise NotPlainJson("it does not hold a JSON object")
    ((key, servers),) = entry.items()
    current = data.get(key, {})
    if not isinstance(current, dict):
        raise NotPlainJson(f"its `{key}` is not an object")
    data[key] = {**current, **servers}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
