"""The search tools: file_search and content_search (thin functions over SearchService).

No `from __future__ import annotations` here: the SDK evaluates the tools' and resolvers' annotations, and these are
closures whose names only exist inside the register function.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from ..permissions import READ_ONLY
from ._service import DEFAULT_MAX_RESULTS, OutputMode

if TYPE_CHECKING:
    from ..project import Services


def register_search_tools(server: MCPServer, services: Callable[[], "Services"]) -> None:
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
