"""The shell tool: one command, no shell, only as LOOMKIN.md's `Shell:` patterns allow (see ShellService).

No `from __future__ import annotations` here: the SDK evaluates the tools' and resolvers' annotations, and these are
closures whose names only exist inside the register function.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field

from ..permissions import RUNS_COMMANDS, Approval, ApprovalOutcome, ask_person, require_approval
from ._service import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS

if TYPE_CHECKING:
    from ..project import Services


def register_shell_tool(server: MCPServer, services: Callable[[], "Services"]) -> None:
    def approve_shell(ctx: Context, command: str) -> Approval | Elicit[Approval]:
        services().shell.authorize(command)
        return ask_person(services().permissions, ctx, "shell", f"run `{command}`")

    @server.tool(annotations=RUNS_COMMANDS, structured_output=False)
    async def shell(
        command: Annotated[str, Field(description="One command line, e.g. `mix test test/app_test.exs`.")],
        approval: Annotated[ApprovalOutcome, Resolve(approve_shell)],
        timeout: Annotated[
            int, Field(description=f"Milliseconds before the command is stopped (at most {MAX_TIMEOUT_MS}).")
        ] = DEFAULT_TIMEOUT_MS,
    ) -> str:
        """Run one command in the project root, if a LOOMKIN.md `Shell:` pattern allows it.

        No shell is involved: pipes, `;`, `&&`, redirections, `$(…)` and globs are refused.
        Output (stdout and stderr together) is cut to its head and tail.
        """
        require_approval(approval, "shell", "the command did not run")
        result = await services().shell.run(services().shell.authorize(command), timeout)
        if result.timed_out:
            status = f"timed out after {timeout} ms and was stopped"
        else:
            status = f"exit code {result.exit_code}"
        notes = "".join(f"\n[{note}]" for note in result.notes)
        return f"$ {command}\n{result.output.rstrip()}\n[{status}, {result.duration_ms} ms]{notes}"
