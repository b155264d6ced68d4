"""The git tool: read-only operations freely, the rest with the person's approval (see GitService).

No `from __future__ import annotations` here: the SDK evaluates the tools' and resolvers' annotations, and these are
closures whose names only exist inside the register function.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field

from ..permissions import RUNS_GIT, Approval, ApprovalOutcome, ask_person, require_approval
from ._service import GitArgs, GitOperation, is_read_only

if TYPE_CHECKING:
    from ..project import Services


def register_git_tool(server: MCPServer, services: Callable[[], "Services"]) -> None:
    def approve_git(ctx: Context, operation: str, args: GitArgs | None) -> Approval | Elicit[Approval]:
        if is_read_only(operation, args):
            return Approval()
        return ask_person(services().permissions, ctx, "git", f"run `{services().git.command_line(operation, args)}`")

    @server.tool(annotations=RUNS_GIT, structured_output=False)
    def git(
        operation: Annotated[GitOperation, Field(description="The git operation.")],
        approval: Annotated[ApprovalOutcome, Resolve(approve_git)],
        args: Annotated[GitArgs | None, Field(description="Options of the operation.")] = None,
    ) -> str:
        """Run a git operation in the project: status, diff, log, show (read-only), add, commit, reset, stash."""
        require_approval(approval, "git", "git was not run")
        return services().git.run(operation, args)
