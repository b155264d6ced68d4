"""Upstream MCP servers from `[mcp].servers`: connected, re-exported as `<server>__<tool>`, kept alive.

Importing the package is cheap (`doctor` reads `_preflight` alone); what loads the MCP client comes on first use.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ._down import UpstreamDown
from ._names import MAX_NAME_LENGTH, SEPARATOR, exported_names

if TYPE_CHECKING:
    from ._forward import Caller
    from ._pool import UpstreamPool
    from ._upstream import Upstream, UpstreamStatus

_LAZY = {
    "Caller": "._forward",
    "UpstreamPool": "._pool",
    "Upstream": "._upstream",
    "UpstreamStatus": "._upstream",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Caller",
    "MAX_NAME_LENGTH",
    "SEPARATOR",
    "Upstream",
    "UpstreamDown",
    "UpstreamPool",
    "UpstreamStatus",
    "exported_names",
]
