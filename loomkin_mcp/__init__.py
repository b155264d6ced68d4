"""loomkin-mcp: Loomkin's coding tools for any editor that speaks MCP.

The public API is small: load settings, open a workspace, build the server.
"""

from ._errors import ConfigError, LoomkinError, PathRefused, PermissionRefused, ToolInputError
from ._version import __version__

__all__ = [
    "ConfigError",
    "LoomkinError",
    "PathRefused",
    "PermissionRefused",
    "ToolInputError",
    "__version__",
    "build_server",
]


def __getattr__(name: str) -> object:
    # The server pulls in the MCP SDK (~0.7 s); import it only when asked for.
    if name == "build_server":
        from .server._server import build_server

        return build_server
    raise AttributeError(f"module 'loomkin_mcp' has no attribute {name!r}")
