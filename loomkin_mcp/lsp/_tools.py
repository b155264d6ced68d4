"""The lsp_* tools: diagnostics and navigation from the project's language servers.

Positions are `file_path` + `symbol` (a name; optionally with `line` to pick one use), or
`file_path` + 1-based `line` + `column`: models name symbols better than they count columns.
No `from __future__ import annotations`: the SDK evaluates these closures' annotations.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import ToolAnnotations
from pydantic import Field

from ..permissions import READ_ONLY, Approval, ApprovalOutcome, ask_person, require_approval
from ._service import with_diagnostics

if TYPE_CHECKING:
    from ..project import Services

Severity = Literal["error", "warning", "information", "hint"]
FilePath = Annotated[str, Field(description="Source file, relative to the project root.")]
Symbol = Annotated[str | None, Field(description="Name of the symbol, e.g. `parse` or `Parser.parse`.")]
Line = Annotated[int | None, Field(description="1-based line (with `column`, or to pick one use of `symbol`).")]
Column = Annotated[int | None, Field(description="1-based column (character) on `line`.")]

RENAMES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)


def register_lsp_tools(server: MCPServer, services: Callable[[], "Services"]) -> None:
    # `services().lsp.session` loads the language-server machinery on first use, and refuses when [lsp] is off.

    def approve_rename(ctx: Context, file_path: str, new_name: str) -> Approval | Elicit[Approval]:
        services().workspace.resolve_for_write(file_path)
        services().decisions.require_why("lsp_rename")
        return ask_person(services().permissions, ctx, "lsp_rename", f"rename a symbol in {file_path} to `{new_name}`")

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def lsp_diagnostics(
        file_path: Annotated[str | None, Field(description="A file to check now; omit for all open files.")] = None,
        severity: Annotated[Severity | None, Field(description="Only this severity or worse.")] = None,
        server: Annotated[str | None, Field(description="Only this language server (by its name).")] = None,
    ) -> str:
        """Diagnostics from the language servers: fresh for one file, or a summary of every open file."""
        return await services().lsp.session.diagnostics(file_path, severity, server)

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def lsp_definition(
        file_path: FilePath, symbol: Symbol = None, line: Line = None, column: Column = None
    ) -> str:
        """Where the symbol at a position is defined: path:line:column and the line's text."""
        session = services().lsp.session
        return await session.definition(await session.target(file_path, line, column, symbol, "definition_provider"))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def lsp_references(
        file_path: FilePath,
        symbol: Symbol = None,
        line: Line = None,
        column: Column = None,
        include_declaration: Annotated[bool, Field(description="Also list the declaration itself.")] = True,
    ) -> str:
        """Every reference to the symbol at a position, across the project."""
        session = services().lsp.session
        target = await session.target(file_path, line, column, symbol, "references_provider")
        return await session.references(target, include_declaration)

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def lsp_hover(file_path: FilePath, symbol: Symbol = None, line: Line = None, column: Column = None) -> str:
        """Type, signature and documentation of the symbol at a position."""
        session = services().lsp.session
        return await session.hover(await session.target(file_path, line, column, symbol, "hover_provider"))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def lsp_symbols(
        file_path: Annotated[str | None, Field(description="A file whose outline to list.")] = None,
        query: Annotated[str | None, Field(description="Search the workspace's symbols by name.")] = None,
    ) -> str:
        """A file's outline (classes, functions… with lines), or a workspace symbol search."""
        return await services().lsp.session.symbols(file_path, query)

    @server.tool(annotations=RENAMES, structured_output=False)
    async def lsp_rename(
        file_path: FilePath,
        new_name: Annotated[str, Field(description="The new name.")],
        approval: Annotated[ApprovalOutcome, Resolve(approve_rename)],
        symbol: Symbol = None,
        line: Line = None,
        column: Column = None,
    ) -> str:
        """Rename a symbol everywhere the language server finds it; returns the diffs and fresh diagnostics.

        Every changed file goes through the same checks and atomic writes as file_edit.
        """
        require_approval(approval, "lsp_rename", "nothing was renamed")
        session = services().lsp.session
        target = await session.target(file_path, line, column, symbol, "rename_provider")
        updated = await session.rename_edits(target, new_name)
        deadline = max([await services().lsp.before_edit(path) for path in updated], default=0.0)
        diffs = [await anyio.to_thread.run_sync(services().files.rewrite, path, text) for path, text in updated.items()]
        summary = f"Renamed to `{new_name}` in {len(updated)} file(s)."
        diagnostics = await services().lsp.after_edit(list(updated), deadline)
        return with_diagnostics("\n".join([summary, *diffs]), diagnostics)
