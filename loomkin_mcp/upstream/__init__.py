"""Upstream MCP servers from `[mcp].servers`: connected, re-exported as `<server>__<tool>`, kept alive."""

from ._names import MAX_NAME_LENGTH, SEPARATOR, exported_names
from ._pool import UpstreamPool
from ._upstream import Upstream, UpstreamDown, UpstreamStatus

__all__ = [
    "MAX_NAME_LENGTH",
    "SEPARATOR",
    "Upstream",
    "UpstreamDown",
    "UpstreamPool",
    "UpstreamStatus",
    "exported_names",
]
