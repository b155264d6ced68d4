"""Loomkin's decision graph: goals, options, decisions, actions and outcomes, with why they connect."""

from . import _render as render
from ._schema import EDGE_TYPES, NODE_TYPES, STATUSES
from ._store import DecisionStore, Edge, Node, StoreError

__all__ = ["EDGE_TYPES", "NODE_TYPES", "STATUSES", "DecisionStore", "Edge", "Node", "StoreError", "render"]
