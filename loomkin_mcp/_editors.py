"""Each editor's MCP config for loomkin-mcp over stdio, in that editor's own schema.

The files in `editor-configs/` are these snippets with placeholder paths (a test keeps them
identical); `loomkin-mcp editor-config EDITOR` prints them with this install's paths.
"""

from __future__ import annotations

from dataclasses import dataclass
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
        ),
        Editor(
            "claude-code",
            "claude-code/.mcp.json",
            "mcpServers",
            None,
            typed=True,
            destination=".mcp.json in the project (or run `claude mcp add loomkin -- {command} --stdio`)",
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
