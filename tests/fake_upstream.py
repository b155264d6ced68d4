"""An upstream MCP server that shows on disk what real ones keep to themselves: cancellation.

Usage: fake_upstream.py STATE_DIR
Tool `wait(seconds)` sleeps; when the call is cancelled it writes STATE_DIR/cancelled.
"""

import sys
from pathlib import Path

import anyio
from mcp.server.mcpserver import MCPServer

STATE = Path(sys.argv[1])
server = MCPServer("fake-upstream")


@server.tool()
async def wait(seconds: float) -> str:
    """Sleep for `seconds`."""
    try:
        await anyio.sleep(seconds)
    except anyio.get_cancelled_exc_class():
        (STATE / "cancelled").write_text("cancelled\n")
        raise
    return f"waited {seconds} s"


if __name__ == "__main__":
    server.run()
