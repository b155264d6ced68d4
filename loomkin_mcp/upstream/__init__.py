"""Upstream MCP servers from `[mcp].servers`: connected, re-exported as `<server>__<tool>`, kept alive.

Importing the package is cheap (`doctor` reads `_preflight` alone); what loads the MCP client comes on first use.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
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


__getattr__ = lazy_attributes(__name__, _LAZY)


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
