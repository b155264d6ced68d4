"""The file tools: file_read, file_write, file_edit and directory_list (thin functions over FileService).

No `from __future__ import annotations` here: the SDK evaluates the tools' and resolvers' annotations, and these are
closures whose names only exist inside the register function.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field

from ..lsp import with_diagnostics
from ..permissions import (
    EDITS_FILES,
    READ_ONLY,
    WRITES_FILES,
    Approval,
    ApprovalOutcome,
    ask_person,
    require_approval,
)
from ._service import DEFAULT_READ_LIMIT, INLINE_READ_BYTES

if TYPE_CHECKING:
    from ..project import Services


def register_file_tools(server: MCPServer, services: Callable[[], "Services"]) -> None:
    # Resolvers run before the tool body: each refuses what the rules forbid first, so the
    # person is never asked to approve something that would be refused anyway.
    def ask(ctx: Context, tool: str, action: str) -> Approval | Elicit[Approval]:
        return ask_person(services().permissions, ctx, tool, action)

    def approve_write(ctx: Context, file_path: str, content: str) -> Approval | Elicit[Approval]:
        services().workspace.resolve_for_write(file_path)
        services().decisions.require_why("file_write")
        return ask(ctx, "file_write", f"write {len(content)} characters to {file_path}")

    def approve_edit(ctx: Context, file_path: str) -> Approval | Elicit[Approval]:
        services().workspace.resolve_for_write(file_path)
        services().decisions.require_why("file_edit")
        return ask(ctx, "file_edit", f"edit {file_path}")

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def file_read(
        file_path: Annotated[str, Field(description="Path relative to the project root.")],
        offset: Annotated[int, Field(description="First line to show, 1-based.")] = 1,
        limit: Annotated[int, Field(description="Number of lines to show.")] = DEFAULT_READ_LIMIT,
    ) -> str:
        """Read a text file with numbered lines. Long files and long lines are cut with a note saying how to read on."""
        # A small file is read at once: the hop to a worker thread would cost more than the read.
        read = services().files.read(file_path, offset, limit, max_size=INLINE_READ_BYTES)
        if read is None:
            read = await anyio.to_thread.run_sync(services().files.read, file_path, offset, limit)
        assert read is not None
        # A file that is read is often edited next: let its language server look at it now.
        services().lsp.prefetch(read.path)
        services().repomap.note(read.path)
        return read.text

    @server.tool(annotations=WRITES_FILES, structured_output=False)
    async def file_write(
        file_path: Annotated[str, Field(description="Path relative to the project root.")],
        content: Annotated[str, Field(description="The whole new content of the file.")],
        approval: Annotated[ApprovalOutcome, Resolve(approve_write)],
    ) -> str:
        """Create or overwrite a file with `content`, atomically; parent directories are created.

        The result ends with the language server's fresh diagnostics for the file, when one is configured.
        """
        require_approval(approval, "file_write", "nothing was written")
        path = services().workspace.resolve_for_write(file_path)
        deadline = await services().lsp.before_edit(path)
        result = await anyio.to_thread.run_sync(services().files.write, file_path, content)
        services().repomap.note(path)
        verb = "Created" if result.created else "Wrote"
        return with_diagnostics(
            f"{verb} '{result.relative}' ({result.size} bytes).", await services().lsp.after_edit([path], deadline)
        )

    @server.tool(annotations=EDITS_FILES, structured_output=False)
    async def file_edit(
        file_path: Annotated[str, Field(description="Path relative to the project root.")],
        old_string: Annotated[str, Field(description="Exact text to replace, whitespace included.")],
        new_string: Annotated[str, Field(description="Text to put in its place.")],
        approval: Annotated[ApprovalOutcome, Resolve(approve_edit)],
        replace_all: Annotated[bool, Field(description="Replace every occurrence, not just a unique one.")] = False,
    ) -> str:
        """Replace exact text in a file and return the unified diff. Without replace_all the match must be unique.

        The result ends with the language server's fresh diagnostics: what the edit introduced and resolved.
        """
        require_approval(approval, "file_edit", "the file is unchanged")
        path = services().workspace.resolve_for_write(file_path)
        deadline = await services().lsp.before_edit(path)
        diff = await anyio.to_thread.run_sync(services().files.edit, file_path, old_string, new_string, replace_all)
        services().repomap.note(path)
        return with_diagnostics(diff, await services().lsp.after_edit([path], deadline))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def directory_list(
        path: Annotated[str, Field(description="Directory relative to the project root.")] = ".",
        include_ignored: Annotated[bool, Field(description="Also show entries .gitignore hides.")] = False,
    ) -> str:
        """List a directory's entries with their type and size; .gitignore'd entries are hidden unless asked for."""
        return services().files.list_directory(path, include_ignored)
