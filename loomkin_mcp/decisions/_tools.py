"""decision_log, decision_query, decision_link, decision_update: the project's memory of why.

They write only loomkin's own decision store, never the project, so they run without asking.
No `from __future__ import annotations`: the SDK evaluates the annotations.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from ..permissions import READ_ONLY
from . import EDGE_TYPES
from ._service import QueryType

if TYPE_CHECKING:
    from ..project import Services

RECORDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)

NodeType = Literal["goal", "decision", "option", "action", "outcome", "observation", "revisit"]
EdgeType = Literal[
    "leads_to", "chosen", "rejected", "requires", "blocks", "enables", "supersedes", "supports", "revises", "summarizes"
]  # fmt: skip
Status = Literal["active", "superseded", "abandoned"]
assert set(EdgeType.__args__) == set(EDGE_TYPES)  # type: ignore[attr-defined]


def register_decision_tools(server: MCPServer, services: Callable[[], "Services"]) -> None:

    @server.tool(annotations=RECORDS, structured_output=False)
    def decision_log(
        node_type: Annotated[NodeType, Field(description="What kind of node this is.")],
        title: Annotated[str, Field(description="A few words: the goal, option, decision, action...")],
        description: Annotated[str | None, Field(description="Why, and what was weighed.")] = None,
        confidence: Annotated[int | None, Field(ge=0, le=100, description="How sure, 0-100.")] = None,
        parent_id: Annotated[str | None, Field(description="Node this one follows from (an edge is added).")] = None,
        edge_type: Annotated[EdgeType, Field(description="The edge from parent_id to this node.")] = "leads_to",
    ) -> str:
        """Log a node in the decision graph; an active goal with the same title is reused, not duplicated."""
        return services().decisions.log(node_type, title, description, confidence, parent_id, edge_type)

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def decision_query(
        query_type: Annotated[QueryType, Field(description="active_goals, recent_decisions, pulse or search.")],
        search_term: Annotated[str | None, Field(description="For search: words in titles or descriptions.")] = None,
        limit: Annotated[int, Field(ge=1, le=500, description="Most nodes to list.")] = 10,
    ) -> str:
        """Read the decision graph: active goals, recent decisions, a health pulse, or a search."""
        return services().decisions.query(query_type, search_term, limit)

    @server.tool(annotations=RECORDS, structured_output=False)
    def decision_link(
        from_id: Annotated[str, Field(description="The node the edge starts at.")],
        to_id: Annotated[str, Field(description="The node the edge ends at.")],
        edge_type: Annotated[EdgeType, Field(description="How they relate, e.g. chosen, rejected, requires.")],
        rationale: Annotated[str | None, Field(description="Why they relate so.")] = None,
    ) -> str:
        """Connect two decision nodes with a typed edge."""
        return services().decisions.link(from_id, to_id, edge_type, rationale)

    @server.tool(annotations=RECORDS, structured_output=False)
    def decision_update(
        id: Annotated[str, Field(description="The node to change.")],
        status: Annotated[Status | None, Field(description="superseded or abandoned (or active again).")] = None,
        confidence: Annotated[int | None, Field(ge=0, le=100, description="New confidence, 0-100.")] = None,
        description: Annotated[str | None, Field(description="New description.")] = None,
    ) -> str:
        """Supersede or abandon a node, or revise its confidence or description."""
        return services().decisions.update(id, status, confidence, description)
