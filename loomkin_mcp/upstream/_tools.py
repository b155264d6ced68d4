"""Upstream tools as our own: each gets a proxy with the same approval path as the built-in tools.

The proxy is a real MCPServer Tool, so an approval is asked through elicitation in both
protocol eras exactly as for file_write; its `arguments` parameter receives the caller's
arguments whole, and the upstream's own schema is what clients see.
No `from __future__ import annotations`: the SDK evaluates these closures' annotations.
"""

import contextlib
from typing import Annotated, Any

import mcp_types as types
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.server.mcpserver.tools import Tool

from ..permissions import Approval, ApprovalOutcome, PermissionService, ask_person, require_approval
from . import Caller, Upstream, UpstreamPool


def read_only(tool: types.Tool) -> bool:
    """An upstream tool that says it changes nothing: called without asking the person."""
    return bool(tool.annotations and tool.annotations.read_only_hint)


def proxy_tool(
    exported: str, upstream: Upstream, tool: types.Tool, pool: UpstreamPool, permissions: PermissionService
) -> Tool:
    """The tool that asks the person (in either protocol era, as the built-in tools do) before `forward`."""

    async def approve(ctx: Context) -> Approval | Elicit[Approval]:  # async: no worker-thread hop per call
        if read_only(tool):
            return Approval()
        return ask_person(permissions, ctx, exported, f"call {tool.name} on {upstream.name}")

    async def proxy(
        ctx: Context, approval: Annotated[ApprovalOutcome, Resolve(approve)], arguments: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        require_approval(approval, exported, f"{tool.name} was not called")
        return await forward(exported, arguments or {}, pool, ctx)

    return Tool.from_function(proxy, name=exported, structured_output=False)


async def forward(exported: str, arguments: dict[str, Any], pool: UpstreamPool, ctx: Context) -> types.CallToolResult:
    """The call passed to its upstream as the caller made it (the upstream validates it against its schema), its
    progress passed back, and the upstream's own requests (sampling…) sent to the caller's editor."""

    async def forward_progress(progress: float, total: float | None, message: str | None) -> None:
        # No progress token, or no request at all (`loomkin-mcp call`): nothing to forward to.
        with contextlib.suppress(Exception):
            await ctx.report_progress(progress, total, message)

    try:
        caller = Caller(ctx.session, ctx.request_context.request_id)
    except ValueError:  # no request (`loomkin-mcp call`): no editor for the upstream to ask
        caller = None
    return await pool.call_tool(exported, arguments, forward_progress, caller)


def listed(exported: str, upstream: Upstream, tool: types.Tool) -> types.Tool:
    """The upstream tool as clients see it: its schema, annotations and metadata, under our name."""
    description = (tool.description or "").rstrip()
    return types.Tool(
        name=exported,
        title=tool.title,
        description=f"{description}\n\n(From the upstream MCP server `{upstream.name}`.)".strip(),
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=tool.annotations,
        icons=tool.icons,
        _meta=tool.meta,
    )
