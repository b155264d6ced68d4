"""The symbol_* tools: read, find and edit code by name path (`Class/method`, `MyApp.Accounts/get_user/1`).

No `from __future__ import annotations`: the SDK evaluates these closures' annotations.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field

from ..lsp import with_diagnostics
from ..permissions import (
    EDITS_FILES,
    READ_ONLY,
    Approval,
    ApprovalOutcome,
    ask_person,
    require_approval,
)
from . import EditMode

if TYPE_CHECKING:
    from ..project import Services

NamePathArg = Annotated[
    str,
    Field(
        description="Names from the outside in, joined by `/`: `MyClass/my_method`, `helper`, "
        "`MyApp.Accounts/get_user` (every clause) or `MyApp.Accounts/get_user/1` (one arity); "
        "a leading `/` anchors it at the file's top level."
    ),
]
FileArg = Annotated[str, Field(description="The file that defines the symbol, relative to the project root.")]
LineArg = Annotated[
    int | None, Field(description="A line inside the symbol you mean, when the name path names several.")
]


def register_symbol_tools(server: MCPServer, services: Callable[[], "Services"]) -> None:

    def approver(mode: EditMode, verb: str) -> Callable[[Context, str, str], Approval | Elicit[Approval]]:
        def approve(ctx: Context, name_path: str, path: str) -> Approval | Elicit[Approval]:
            services().workspace.resolve_for_write(path)
            services().decisions.require_why(f"symbol_{mode}")
            return ask_person(services().permissions, ctx, f"symbol_{mode}", f"{verb} {name_path} in {path}")

        return approve

    async def edit(
        mode: EditMode, approval: ApprovalOutcome, name_path: str, path: str, text: str, line: int | None
    ) -> str:
        """What the three edit tools share (each is the tool `symbol_<mode>`)."""
        require_approval(approval, f"symbol_{mode}", "the file is unchanged")
        target = services().workspace.resolve_for_write(path)
        deadline = await services().lsp.before_edit(target)
        result = await services().symbols.edit(mode, name_path, path, text, line)
        services().repomap.note(target)
        return with_diagnostics(result, await services().lsp.after_edit([target], deadline))

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def symbol_overview(
        path: Annotated[str, Field(description="A file, or a directory (its files' top-level symbols).")],
    ) -> str:
        """The symbols of a file (kind, name path, lines), or the top-level symbols of each file under a directory.

        Name paths shown here are what symbol_find, symbol_references and the symbol edits take.
        """
        return await services().symbols.overview(path)

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def symbol_find(
        name_path: NamePathArg,
        path: Annotated[str, Field(description="A file or directory to look in.")] = ".",
        include_body: Annotated[bool, Field(description="Also return each symbol's source.")] = False,
        depth: Annotated[int, Field(ge=0, le=10, description="Also list children this many levels down.")] = 0,
        substring: Annotated[bool, Field(description="Match the last name as a substring.")] = False,
        line: LineArg = None,
    ) -> str:
        """Find symbols by name path, with their file and lines, optionally with their source and children."""
        return await services().symbols.find(name_path, path, include_body, depth, substring, line)

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def symbol_references(name_path: NamePathArg, path: FileArg, line: LineArg = None) -> str:
        """The places that use a symbol, each with the name path of the symbol it is in, its line and a snippet."""
        return await services().symbols.references(name_path, path, line)

    @server.tool(annotations=EDITS_FILES, structured_output=False)
    async def symbol_replace_body(
        name_path: NamePathArg,
        path: FileArg,
        body: Annotated[
            str,
            Field(
                description="The symbol's new source, signature line included; decorators given here replace the "
                "symbol's own (leave them out to keep them)."
            ),
        ],
        approval: Annotated[ApprovalOutcome, Resolve(approver("replace_body", "replace"))],
        line: LineArg = None,
    ) -> str:
        """Replace a symbol's whole definition; indentation follows the symbol's. Returns the diff and diagnostics."""
        return await edit("replace_body", approval, name_path, path, body, line)

    @server.tool(annotations=EDITS_FILES, structured_output=False)
    async def symbol_insert_before(
        name_path: NamePathArg,
        path: FileArg,
        text: Annotated[str, Field(description="Lines to insert before the symbol (and its decorators).")],
        approval: Annotated[ApprovalOutcome, Resolve(approver("insert_before", "insert before"))],
        line: LineArg = None,
    ) -> str:
        """Insert lines just before a symbol, at its indentation and set apart as the language's style wants.
        Returns the diff and diagnostics."""
        return await edit("insert_before", approval, name_path, path, text, line)

    @server.tool(annotations=EDITS_FILES, structured_output=False)
    async def symbol_insert_after(
        name_path: NamePathArg,
        path: FileArg,
        text: Annotated[str, Field(description="Lines to insert just after the symbol's last line.")],
        approval: Annotated[ApprovalOutcome, Resolve(approver("insert_after", "insert after"))],
        line: LineArg = None,
    ) -> str:
        """Insert lines just after a symbol, at its indentation and set apart as the language's style wants.
        Returns the diff and diagnostics."""
        return await edit("insert_after", approval, name_path, path, text, line)
