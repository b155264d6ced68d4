"""What can be told about an upstream without an MCP client: a missing program, a closed port, and fixes.

`doctor` answers from here in milliseconds when nothing can connect anyway, without loading the
MCP client (≈ 0.8 s to import); the supervisor words its errors' fixes with the same function.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from loomkin_lsp_client import find_executable

from ..config import McpServerEntry


def not_found(entry: McpServerEntry) -> str:
    return f"{entry.name}: `{entry.command}` was not found; install it or fix its `command` in [mcp]"


def unreachable(entry: McpServerEntry, timeout: float = 1.0) -> str | None:
    """Why `entry` cannot connect at all, or None when it might (only a real handshake tells)."""
    if entry.command:
        return None if find_executable(entry.command) else not_found(entry)
    parts = urlsplit(entry.url or "")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return None
    except (ConnectionRefusedError, socket.gaierror) as exc:
        return f"{entry.name} at {entry.url} could not be reached ({exc})"
    except (OSError, ValueError):
        return None  # slow or odd: the handshake will tell


def fix_for(entry: McpServerEntry, error: str) -> str:
    """What the person can do about `error`, in a clause."""
    command = " ".join([entry.command or "", *entry.args])
    if "tidewave" in command and "could not be found" in error:
        return (
            'add {:tidewave, "~> 0.5", only: :dev} to the deps in mix.exs and run `mix deps.get` '
            "(Tidewave runs inside the Phoenix app)"
        )
    if "was not found" in error:
        return f"install `{entry.command}`, or fix its `command` in [mcp].servers"
    if entry.url:
        return f"start the server that listens at {entry.url}, or fix its `url` (and `headers`) in [mcp].servers"
    return "fix what its last stderr says, or its `command`, `args` and `env` in [mcp].servers"
