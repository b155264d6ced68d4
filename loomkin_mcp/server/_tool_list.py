"""loomkin's own tools as `tools/list` gives them, saved with the code, so a client lists them before any is built.

A domain's tools cost ~30 ms of imports and ~1 ms of pydantic a tool to build; a client that lists the tools (every
editor does, and the SDK's client before its first call's answer) gets this list instead, and each domain is built
by the first call of one of its tools. tests/test_layout.py checks the list against what registration gives;
`python -m loomkin_mcp.server._tool_list` writes it again after a tool changes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import mcp_types as types

SAVED = Path(__file__).with_name("tools.json")


@cache
def saved_tools() -> tuple[types.Tool, ...] | None:
    """The saved list; None when it cannot be read (the tools are then built to be listed)."""
    try:
        return tuple(types.Tool.model_validate(tool) for tool in json.loads(SAVED.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


async def built_tools() -> list[dict[str, object]]:
    """The list as registering every domain gives it, in `tools/list`'s order."""
    from mcp.server.mcpserver import MCPServer

    from ._server import TOOL_DOMAINS

    server = MCPServer("loomkin")
    for domain in TOOL_DOMAINS:
        domain.register(server, lambda: None)  # type: ignore[arg-type,return-value]  # (never called here)
    return [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in await server.list_tools()]


if __name__ == "__main__":
    import anyio

    SAVED.write_text(json.dumps(anyio.run(built_tools), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {SAVED}")
