"""The repo_map tool: the project's key definitions within a token budget (see RepoMapService).

No `from __future__ import annotations`: the SDK evaluates these closures' annotations.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from ..permissions import READ_ONLY
from ._service import ProgressReport

if TYPE_CHECKING:
    from ..project import Services


def progress_to(ctx: Context) -> ProgressReport:
    """A progress callback that reports to the caller, when it asked for progress."""

    async def report(progress: float, total: float | None, message: str | None) -> None:
        try:
            await ctx.report_progress(progress, total, message)
        except Exception:  # noqa: BLE001 - no progress token, or no request (`loomkin-mcp call`)
            pass

    return report


def register_repo_map_tool(server: MCPServer, services: Callable[[], "Services"]) -> None:
    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def repo_map(
        ctx: Context,
        focus_files: Annotated[
            list[str] | None, Field(description="Files to centre the map on (with those read and edited lately).")
        ] = None,
        identifiers: Annotated[list[str] | None, Field(description="Names the task is about.")] = None,
        max_tokens: Annotated[
            int | None, Field(ge=64, le=65536, description="Budget; default [context].max_repo_map_tokens.")
        ] = None,
    ) -> str:
        """The project's most important definitions, ranked by how the code references them, within a token budget.

        The first call indexes the project (progress is reported); later calls are quick and stay fresh.
        """
        return await services().repomap.render(focus_files, identifiers, max_tokens, progress_to(ctx))
