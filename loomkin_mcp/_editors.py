"""Each editor's MCP config for loomkin-mcp over stdio, in that editor's own schema.

The files in `editor-configs/` are these snippets with placeholder paths (a test keeps them
identical); `loomkin-mcp editor-config EDITOR` prints them with this install's paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

COMMAND_PLACEHOLDER = "/absolute/path/to/loomkin-mcp/.venv/bin/loomkin-mcp"
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
    """The schema wants `"type": "stdio"`."""
    env: bool = True


EDITORS: dict[str, Editor] = {
    editor.name: editor
    for editor in (
        Editor("claude-desktop", "claude-desktop/claude_desktop_config.json", "mcpServers", ROOT_PLACEHOLDER),
        Editor("cursor", "cursor/.cursor/mcp.json", "mcpServers", WORKSPACE_FOLDER),
        Editor("zed", "zed/settings.json", "context_servers", ROOT_PLACEHOLDER),
        Editor("vscode", "vscode/.vscode/mcp.json", "servers", WORKSPACE_FOLDER, typed=True, env=False),
        Editor("claude-code", "claude-code/.mcp.json", "mcpServers", None, typed=True),
        Editor("windsurf", "windsurf/mcp_config.json", "mcpServers", ROOT_PLACEHOLDER),
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
