"""`loomkin-mcp`: serve a project over MCP, or try its tools from a terminal (`_main`); `doctor` and editor setup."""

from ._main import main

__all__ = ["main"]
