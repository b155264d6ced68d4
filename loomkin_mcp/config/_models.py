"""Pydantic models for every section of `.loomkin.toml`, with Loomkin's own defaults.

Models are strict (a string is never silently read as a number) and keep unknown keys
(`extra="allow"`) so the loader can warn about each one instead of failing.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

READ_ONLY_TOOLS = ["file_read", "file_search", "content_search", "directory_list"]


class Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


class ModelSection(Section):
    default: str = "anthropic:claude-sonnet-4-6"
    weak: str = "anthropic:claude-haiku-4-5"
    architect: str = "anthropic:claude-opus-4-6"
    editor: str = "anthropic:claude-haiku-4-5"


class PermissionsSection(Section):
    auto_approve: list[str] = Field(default_factory=lambda: list(READ_ONLY_TOOLS))
    """Tool names or globs (`tidewave__*`) that run without asking the person."""


class ContextSection(Section):
    max_repo_map_tokens: Annotated[int, Field(ge=0)] = 2048
    max_decision_context_tokens: Annotated[int, Field(ge=0)] = 1024
    reserved_output_tokens: Annotated[int, Field(ge=0)] = 4096


class DecisionsSection(Section):
    enabled: bool = True
    enforce_pre_edit: bool = False
    auto_log_commits: bool = True
    graph: Annotated[str, Field(max_length=200)] | None = None
    """In a PostgreSQL store shared by many projects, the graph this project writes and reads. Unset: the
    project's own (its git root commit, else its path); the same name in several repositories shares one."""


class McpServerEntry(Section):
    """An upstream MCP server: a command run over stdio, or a URL (SSE or streamable HTTP)."""

    name: Annotated[str, Field(min_length=1)]
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_ms: Annotated[int, Field(gt=0)] = 60_000

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerEntry:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of `command` (stdio) or `url` (SSE / streamable HTTP)")
        return self


class McpSection(Section):
    server_enabled: bool = True
    servers: list[McpServerEntry] = Field(default_factory=list)
    max_restarts_per_minute: Annotated[int, Field(ge=1, le=1000)] = 30
    """An upstream that dies this often in a minute is restarted with backoff instead of at once."""


class LspServerEntry(Section):
    name: Annotated[str, Field(min_length=1)]
    command: Annotated[str, Field(min_length=1)]
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=list)
    """Language ids or file extensions (`python`, `.py`) this server handles."""
    root_markers: list[str] = Field(default_factory=list)
    initialization_options: dict[str, object] = Field(default_factory=dict)
    settings: dict[str, object] = Field(default_factory=dict)


class LspSection(Section):
    enabled: bool = True
    servers: list[LspServerEntry] = Field(default_factory=list)
    """Empty: well-known servers found on PATH are used for the project's languages."""
    diagnostics_on_edit: bool = True
    """Append fresh diagnostics to file_write / file_edit / lsp_rename results."""
    diagnostics_timeout_ms: Annotated[int, Field(ge=100, le=120_000)] = 4000
    request_timeout_ms: Annotated[int, Field(ge=100, le=300_000)] = 10_000
    start_timeout_ms: Annotated[int, Field(ge=1000, le=300_000)] = 20_000
    max_open_documents: Annotated[int, Field(ge=1, le=10_000)] = 50
    max_restarts_per_minute: Annotated[int, Field(ge=1, le=1000)] = 5
    """A server that fails this often in a minute is left stopped for the rest of that minute."""


class ShellSection(Section):
    sandbox: bool = True
    """Run shell commands (and git) inside an OS sandbox: bubblewrap on Linux."""
    network: bool = False
    """Let sandboxed commands reach the network."""


class RepoSection(Section):
    watch_enabled: bool = True


class BudgetSection(Section):
    max_per_team_usd: Annotated[float, Field(ge=0)] = 5.00
    max_per_agent_usd: Annotated[float, Field(ge=0)] = 1.00


class TeamsSection(Section):
    enabled: bool = True
    max_agents_per_team: Annotated[int, Field(ge=1)] = 10
    max_concurrent_teams: Annotated[int, Field(ge=1)] = 3
    budget: BudgetSection = Field(default_factory=BudgetSection)

    def summary(self) -> str:
        """What `[teams]` says, and that this server runs no agent teams (doctor and loomkin://rules show it)."""
        state = "enabled" if self.enabled else "disabled"
        return (
            f"[teams]: {state}, at most {self.max_agents_per_team} agents per team and {self.max_concurrent_teams} "
            f"teams at once, ${self.budget.max_per_team_usd:.2f} per team and ${self.budget.max_per_agent_usd:.2f} "
            "per agent. Read for Loomkin's own agent; loomkin-mcp runs no agent teams, so it does not apply them."
        )


class ProviderEndpoint(Section):
    """An OpenAI-compatible backend (Ollama, vLLM, SGLang, LM Studio, Exo, LiteLLM...)."""

    url: str
    auth_key: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f'expected an http:// or https:// URL such as "http://localhost:11434/v1", got "{url}"')
        return url


class ProviderSection(Section):
    endpoints: dict[str, ProviderEndpoint] = Field(default_factory=dict)


class LoomkinConfig(Section):
    """The whole of `.loomkin.toml`; every section optional."""

    model: ModelSection = Field(default_factory=ModelSection)
    permissions: PermissionsSection = Field(default_factory=PermissionsSection)
    context: ContextSection = Field(default_factory=ContextSection)
    decisions: DecisionsSection = Field(default_factory=DecisionsSection)
    mcp: McpSection = Field(default_factory=McpSection)
    lsp: LspSection = Field(default_factory=LspSection)
    repo: RepoSection = Field(default_factory=RepoSection)
    shell: ShellSection = Field(default_factory=ShellSection)
    teams: TeamsSection = Field(default_factory=TeamsSection)
    provider: ProviderSection = Field(default_factory=ProviderSection)


class Environment(BaseModel):
    """The environment variables Loomkin reads (secrets never appear in logs or reprs)."""

    model_config = ConfigDict(frozen=True)

    anthropic_api_key: SecretStr | None = None
    openai_api_key: SecretStr | None = None
    google_api_key: SecretStr | None = None
    database_url: SecretStr | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 4200
    secret_key_base: SecretStr | None = None
    """Unset means "derived from $HOME", as in Loomkin."""
