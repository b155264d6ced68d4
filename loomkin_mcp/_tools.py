"""The MCP tools: thin typed functions over the services; schemas come from the type hints.

Every tool that changes something takes an `approval` filled by a resolver: it asks the
person through MCP elicitation unless `[permissions].auto_approve` covers the tool or the
client cannot elicit (then the client's own approval prompt governs).

No `from __future__ import annotations` here: the SDK evaluates the tools' and resolvers'
annotations, and these are closures whose names only exist inside `register_tools`.
"""

from collections.abc import Callable
from typing import Annotated

import anyio
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp_types import ToolAnnotations
from pydantic import Field

from ._errors import PermissionRefused, one_line
from .services import Approval, GitArgs, GitOperation, OutputMode, PermissionService, Services, is_read_only
from .services.files import DEFAULT_READ_LIMIT, INLINE_READ_BYTES
from .services.search import DEFAULT_MAX_RESULTS
from .services.shell import DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
WRITES_FILES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
EDITS_FILES = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)
RUNS_COMMANDS = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
)
RUNS_GIT = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False)

ApprovalOutcome = ElicitationResult[Approval]


def register_tools(server: MCPServer, services: Callable[[], Services]) -> None:

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

    def approve_shell(ctx: Context, command: str) -> Approval | Elicit[Approval]:
        services().shell.authorize(command)
        return ask(ctx, "shell", f"run `{command}`")

    def approve_git(ctx: Context, operation: str, args: GitArgs | None) -> Approval | Elicit[Approval]:
        if is_read_only(operation, args):
            return Approval()
        return ask(ctx, "git", f"run `{services().git.command_line(operation, args)}`")

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

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def file_search(
        pattern: Annotated[str, Field(description="Glob: `**/*.ex`, `lib/**/*.py`, `*.md` (any depth).")],
        path: Annotated[str, Field(description="Directory to search, relative to the project root.")] = ".",
        include_hidden: Annotated[bool, Field(description="Also list dot-files and dot-directories.")] = False,
        include_ignored: Annotated[bool, Field(description="Also list what .gitignore / .ignore hide.")] = False,
        max_results: Annotated[int, Field(ge=1, le=5000, description="Most paths to list.")] = DEFAULT_MAX_RESULTS,
    ) -> str:
        """Find files by glob, newest-modified first; .gitignore is respected."""
        return services().search.find_files(pattern, path, include_hidden, include_ignored, max_results)

    @server.tool(annotations=READ_ONLY, structured_output=False)
    def content_search(
        pattern: Annotated[str, Field(description="Regular expression (ripgrep syntax), e.g. `def \\w+\\(`.")],
        path: Annotated[str, Field(description="Directory to search, relative to the project root.")] = ".",
        glob: Annotated[str | None, Field(description="Only files matching this glob, e.g. `*.{ex,exs}`.")] = None,
        case_insensitive: Annotated[bool, Field(description="Ignore case.")] = False,
        context_lines: Annotated[int, Field(description="Lines of context around each match (0-20).")] = 0,
        output_mode: Annotated[
            OutputMode, Field(description="`content`: matching lines; `files`: paths; `count`: matches per file.")
        ] = "content",
        max_results: Annotated[
            int, Field(ge=1, le=5000, description="Most matches (or files) to return.")
        ] = DEFAULT_MAX_RESULTS,
        include_hidden: Annotated[bool, Field(description="Also search dot-files.")] = False,
    ) -> str:
        """Search file contents with a regular expression (ripgrep); paths are relative to the project root."""
        return services().search.search(
            pattern, path, glob, case_insensitive, context_lines, output_mode, max_results, include_hidden
        )

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

    @server.tool(annotations=RUNS_GIT, structured_output=False)
    def git(
        operation: Annotated[GitOperation, Field(description="The git operation.")],
        approval: Annotated[ApprovalOutcome, Resolve(approve_git)],
        args: Annotated[GitArgs | None, Field(description="Options of the operation.")] = None,
    ) -> str:
        """Run a git operation in the project: status, diff, log, show (read-only), add, commit, reset, stash."""
        require_approval(approval, "git", "git was not run")
        return services().git.run(operation, args)


def ask_person(permissions: PermissionService, ctx: Context, tool: str, action: str) -> Approval | Elicit[Approval]:
    """What an approval resolver returns: ask through elicitation, or approve when no one is to be asked."""
    if not permissions.needs_approval(tool) or not _client_can_elicit(ctx):
        return Approval()
    # The action quotes the model's input: a newline or a bidi override must not disguise what is asked.
    return Elicit(one_line(f"Allow {tool} to {action}?"), Approval)


def with_diagnostics(result: str, diagnostics: str | None) -> str:
    """An edit's result, followed by its language server's fresh diagnostics when there are any."""
    return f"{result}\n\n{diagnostics}" if diagnostics else result


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
