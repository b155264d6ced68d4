"""project_context: a model's bearings in one call (rules, goals and decisions, the repo map, diagnostics), each part
inside its budget.

No `from __future__ import annotations`: the SDK evaluates these closures' annotations.
"""

from collections.abc import Callable
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from pydantic import Field

from ..permissions import READ_ONLY
from ..repomap._service import ProgressReport
from ..repomap._tools import progress_to
from ..workspace import ENFORCED_SECTIONS, Workspace, abridge
from ._services import Services

DEFAULT_CONTEXT_TOKENS = 8192
MAX_DIAGNOSTIC_ROWS = 30
# Below this, a file's instructions are named, not started and cut a sentence in.
_MIN_USEFUL_CHARS = 400


def register_context_tools(server: MCPServer, services: Callable[[], Services]) -> None:

    @server.tool(annotations=READ_ONLY, structured_output=False)
    async def project_context(
        ctx: Context,
        max_tokens: Annotated[
            int, Field(ge=1024, le=1_000_000, description="The model's context to fill, output reserve included.")
        ] = DEFAULT_CONTEXT_TOKENS,
    ) -> str:
        """LOOMKIN.md rules, goals and decisions, the repo map and current diagnostics, leaving room to answer."""
        return await render_project_context(services(), max_tokens, progress_to(ctx))

    @server.prompt(
        name="project_context", title="Project context", description="The project's rules, map and problems."
    )
    async def project_context_prompt() -> str:
        return await render_project_context(services(), DEFAULT_CONTEXT_TOKENS, None)


async def render_project_context(services: Services, max_tokens: int, progress: ProgressReport | None) -> str:
    from ..repomap import estimate_tokens

    config = services.workspace.config.context
    budget = max(max_tokens - config.reserved_output_tokens, 256)
    parts = [f"# Project context: {services.workspace.root}"]
    parts.extend(instruction_sections(services.workspace, budget // 3))
    if services.decisions.enabled:
        decisions = services.decisions.context_text(min(config.max_decision_context_tokens, budget // 4))
        parts.append(f"## Decisions\n{decisions}")
    diagnostics = _diagnostics_section(services)
    used = sum(estimate_tokens(part) for part in parts) + estimate_tokens(diagnostics)
    map_budget = min(config.max_repo_map_tokens, budget - used - 16)
    if map_budget >= 64:
        parts.append("## Repo map\n" + await services.repomap.render(max_tokens=map_budget, progress=progress))
    parts.append(diagnostics)
    return "\n\n".join(parts)


def instruction_sections(workspace: Workspace, budget: int) -> list[str]:
    """LOOMKIN.md, then AGENTS.md, CLAUDE.md…, within `budget` tokens together.

    LOOMKIN.md's enforced sections are always whole; prose that does not fit is cut with a marker
    that says where to read the rest, and files with no room left are named, never dropped unsaid.
    """
    from ..repomap import CHARS_PER_TOKEN

    room = budget * CHARS_PER_TOKEN
    sections = []
    rules = workspace.rules
    if rules.text.strip():
        name = rules.path.name if rules.path else "LOOMKIN.md"
        body = abridge(
            rules.text.strip() + "\n", room, lambda heading: heading.lower() in ENFORCED_SECTIONS,
            f"read all of it with file_read {name} or the loomkin://rules resource",
        )  # fmt: skip
        sections.append(f"## Rules ({name})\n{body}")
        room -= len(sections[-1])
    for item in workspace.other_instructions:
        head = f"## Instructions ({item.name}; guidance only: loomkin-mcp enforces LOOMKIN.md alone)\n"
        if room - len(head) < _MIN_USEFUL_CHARS:
            sections.append(f"{head}[Not shown, for lack of room; read it with file_read {item.name}.]")
            continue
        body = abridge(item.text.strip() + "\n", room - len(head), lambda heading: False,
                       f"read all of it with file_read {item.name}")  # fmt: skip
        sections.append(head + body)
        room -= len(sections[-1])
    return [section.rstrip() for section in sections]


def _diagnostics_section(services: Services) -> str:
    rows = services.lsp.collect_rows()
    if not rows:
        return "## Diagnostics\nNone reported in the open files."
    shown = rows[:MAX_DIAGNOSTIC_ROWS]
    more = f"\n… {len(rows) - len(shown)} more (lsp_diagnostics)" if len(rows) > len(shown) else ""
    return "## Diagnostics\n" + "\n".join(shown) + more
