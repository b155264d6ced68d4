"""Loomkin's decision graph: goals, options, decisions, actions and outcomes, with why they connect."""

from typing import TYPE_CHECKING

from .._lazy import lazy_attributes
from . import _render as render
from ._schema import EDGE_TYPES, NODE_TYPES, STATUSES
from ._store import DecisionStore, Edge, Node, StoreError

if TYPE_CHECKING:
    from ._service import DecisionService, ExportFormat, QueryType

# The service (which reaches git and the sandbox) loads on first use: the store's users do not pay for it.
_LAZY = {"DecisionService": "._service", "ExportFormat": "._service", "QueryType": "._service"}


__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "EDGE_TYPES",
    "NODE_TYPES",
    "STATUSES",
    "DecisionService",
    "DecisionStore",
    "Edge",
    "ExportFormat",
    "Node",
    "QueryType",
    "StoreError",
    "render",
]
