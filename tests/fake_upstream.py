"""An upstream MCP server that shows on disk what real ones keep to themselves: cancellation.

Usage: fake_upstream.py STATE_DIR [PORT]
Tool `wait(seconds)` sleeps; when the call is cancelled it writes STATE_DIR/cancelled.
With PORT it serves legacy SSE at http://127.0.0.1:PORT/events (a URL not ending in /sse,
to show the fallback from streamable HTTP); otherwise stdio.
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
    if len(sys.argv) > 2:
        server.run("sse", host="127.0.0.1", port=int(sys.argv[2]), sse_path="/events")
    else:
        server.run()
