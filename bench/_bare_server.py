"""The reference for start-up and memory: a bare mcp 2.x MCPServer with one tool."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def echo(message: str) -> str:
    """Echo the message."""
    return message


if __name__ == "__main__":
    server.run()
