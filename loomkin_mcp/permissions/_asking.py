"""Asking the person: every tool that changes something takes an `approval` filled by a resolver, which asks
through MCP elicitation unless `[permissions].auto_approve` covers the tool or the client cannot elicit (then the
client's own approval prompt governs); and the hints each tool declares about what it may do."""

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit
from mcp_types import ToolAnnotations

from .._errors import PermissionRefused, one_line
from ._service import Approval, PermissionService

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITES_FILES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
EDITS_FILES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
RUNS_COMMANDS = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)
RUNS_GIT = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

ApprovalOutcome = ElicitationResult[Approval]


def ask_person(permissions: PermissionService, ctx: Context, tool: str, action: str) -> Approval | Elicit[Approval]:
    """What an approval resolver returns: ask through elicitation, or approve when no one is to be asked."""
    if not permissions.needs_approval(tool) or not _client_can_elicit(ctx):
        return Approval()
    # The action quotes the model's input: a newline or a bidi override must not disguise what is asked.
    return Elicit(one_line(f"Allow {tool} to {action}?"), Approval)


def _client_can_elicit(ctx: Context) -> bool:
    try:
        capabilities = ctx.client_capabilities
    except ValueError:
        # No request: an in-process call (`loomkin-mcp call`), made by the person themselves.
        return False
    return capabilities is not None and capabilities.elicitation is not None


def require_approval(outcome: ApprovalOutcome, tool: str, consequence: str) -> None:
    if isinstance(outcome, AcceptedElicitation) and outcome.data.approve:
        return
    how = "declined" if outcome.action in ("decline", "accept") else "cancelled"
    raise PermissionRefused(f"{tool} was {how} by the person, so {consequence}; ask them before trying again.")
