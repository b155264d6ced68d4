"""The MCP server: tools, the rules resource, instructions, and uniform tool errors."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import gc
import importlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import mcp_types as types
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    InputRequiredResult,
    NotificationParams,
    SetLevelRequestParams,
    SubscribeRequestParams,
    TextContent,
    UnsubscribeRequestParams,
)
from pydantic import ValidationError

from .._errors import LoomkinError, counted, one_line
from .._logging import McpLogBridge
from .._redact import redact
from .._version import __version__
from ..config import McpSection
from ..project._registry import Project, ProjectRegistry
from ..upstream import UpstreamDown
from ..workspace import Grant, Workspace
from ._calls import CallLog
from ._roots import ROOTS_INSTRUCTIONS, SessionProjects
from ._subscriptions import ClientNotifier, client_of

if TYPE_CHECKING:
    from ..project import Services
    from ..upstream import UpstreamPool
    from ..upstream._relay import Relay

SERVER_NAME = "loomkin"
DIAGNOSTICS_URI = "loomkin://diagnostics"
UPSTREAMS_URI = "loomkin://upstreams"
REPO_MAP_URI = "loomkin://repo-map"
DECISIONS_URI = "loomkin://decisions"
PROJECTS_URI = "loomkin://projects"
SAMPLING_SECONDS = 10.0
# How long the trust prompt waits for the person before the project stays restricted for this session.
TRUST_PROMPT_SECONDS = 600
# When a client is asked whether the person trusts the project: over stdio right after initialize (the editor that
# started us); over HTTP with the first tool call, on that call's own stream (a request sent outside any call may find
# no stream of the client's open yet and be lost); over HTTP without a token never (any local program can connect).
TrustPromptWhen = Literal["after initialize", "on the first call"]

logger = logging.getLogger("loomkin_mcp.server")


@dataclass(frozen=True)
class ToolDomain:
    """A domain's tools: the module and function that register them, and their names (and its prompt's)."""

    module: str
    function: str
    names: tuple[str, ...]

    def register(self, server: MCPServer, services: Callable[[], Services]) -> None:
        register = getattr(importlib.import_module(self.module, __package__), self.function)
        register(server, services)


# In the order `tools/list` has always given them; tests/test_layout.py checks each against what it registers.
TOOL_DOMAINS = (
    ToolDomain("..files._tools", "register_file_tools", ("file_read", "file_write", "file_edit", "directory_list")),
    ToolDomain("..search._tools", "register_search_tools", ("file_search", "content_search")),
    ToolDomain("..shell._tools", "register_shell_tool", ("shell",)),
    ToolDomain("..git._tools", "register_git_tool", ("git",)),
    ToolDomain(
        "..lsp._tools",
        "register_lsp_tools",
        ("lsp_diagnostics", "lsp_definition", "lsp_references", "lsp_hover", "lsp_symbols", "lsp_rename"),
    ),
    ToolDomain(
        "..symbols._tools",
        "register_symbol_tools",
        (
            "symbol_overview",
            "symbol_find",
            "symbol_references",
            "symbol_replace_body",
            "symbol_insert_before",
            "symbol_insert_after",
        ),
    ),  # fmt: skip
    ToolDomain("..repomap._tools", "register_repo_map_tool", ("repo_map",)),
    ToolDomain("..project._context", "register_context_tools", ("project_context",)),
    ToolDomain(
        "..decisions._tools",
        "register_decision_tools",
        ("decision_log", "decision_query", "decision_link", "decision_update"),
    ),
)
PROMPT = "project_context"
"""loomkin's one prompt (registered with the tool of that name)."""
TOOL_ORDER = {name: place for place, name in enumerate(name for domain in TOOL_DOMAINS for name in domain.names)}
"""Each of loomkin's own tool (and prompt) names, by its place in `tools/list`."""


class LoomkinServer(MCPServer):
    """MCPServer with upstream servers' tools, resources and prompts beside its own.

    Tool failures are always one sentence in an `isError` result: the SDK would prefix
    "Error executing tool …", dump pydantic's multi-line validation report, or hide a
    crash behind a generic line.
    """

    projects: ProjectRegistry
    session_projects: SessionProjects
    notifier: ClientNotifier
    calls: CallLog
    """The latest tool calls, for the status page."""
    started: float
    """When the server was built (time.monotonic)."""
    # (project root, exported upstream tool name) -> (the upstream's tool it was built for, its proxy).
    _proxies: dict[tuple[Path, str], tuple[types.Tool, Tool]]
    relay: Relay | None
    """Relays read-only upstream calls on stdio (upstream._relay), made at the first one; None until then and on
    other transports."""
    _relay_write: Callable[[str], Awaitable[None]] | None
    _domains_left: list[ToolDomain]
    """The domains whose tools are not registered yet (see `ensure_tools`)."""
    _services_of_request: Callable[[], Services]

    def ensure_tools(self, tool: str | None = None) -> None:
        """Register loomkin's own tools and prompt: those of `tool`'s domain when it is one of ours (none for another
        name), all when no tool is named. All domains' modules take ~30 ms to import and their schemas ~30 ms to
        build, and `initialize` needs none: each is registered by the first request that needs it (a call, only
        its own domain's; `tools/list` answers from the saved list)."""
        for domain in [domain for domain in self._domains_left if tool is None or tool in domain.names]:
            self._domains_left.remove(domain)
            domain.register(self, self._services_of_request)
            # What start-up and the schemas made lives as long as the process: kept out of the collector's
            # sight, a full collection walks only what requests made (it took ~40 ms in a warm map's call).
            gc.freeze()

    async def start_after_handshake(self, ctx: Any, call_next: Any) -> Any:
        """Once a client is past `initialize`, the projects' background work may start."""
        if ctx.method != "initialize":
            self.projects.begin_background()
        return await call_next(ctx)

    def project(self) -> Project:
        """The project of the request being handled (outside a request: the default one); see `_roots`."""
        return self.session_projects.current()

    @property
    def services(self) -> Services:
        return self.project().services

    @property
    def upstreams(self) -> UpstreamPool:
        """The caller's project's upstreams; none for a client whose project cannot be had (its calls say why)."""
        try:
            return self.project().upstreams
        except LoomkinError:
            return _no_upstreams()

    def relay_answers_to(self, write: Callable[[str], Awaitable[None]]) -> None:
        """Calls of the one stdio session may be relayed, their answers written with `write` (the SDK's writer)."""
        self._relay_write = write

    def _relay(self) -> Relay | None:
        if self.relay is None and self._relay_write is not None:  # made here: its imports cost start-up ~9 ms
            from ..upstream._relay import Relay

            def failed(message: str) -> dict[str, Any]:
                return _error_result(message).model_dump(by_alias=True, mode="json", exclude_none=True)

            self.relay = Relay(self._relay_write, self.calls.record, failed)
        return self.relay

    @asynccontextmanager
    async def shared_resources(self) -> AsyncIterator[None]:
        """The projects' background work (upstream connections, commit watchers, closing idle ones), once.

        Entered by the stdio runner, or once by the HTTP app however many clients connect; on the way out every
        project stops what its tools started (commands, language servers), even while being cancelled.
        """
        async with anyio.create_task_group() as group:
            await group.start(self.projects.run)
            try:
                yield
            finally:
                group.cancel_scope.cancel()

    async def close(self) -> None:
        """Close every project (a server whose `shared_resources` never ran: the CLI's one-shot commands)."""
        await self.projects.close_all()

    # -- tools ----------------------------------------------------------------------------

    async def list_tools(self) -> list[types.Tool]:
        from ..upstream._tools import listed
        from ._tool_list import saved_tools

        saved = saved_tools() if self._domains_left else None
        if saved is not None:  # listed as saved with the code: each domain is built by its tools' first call
            own = list(saved)
        else:
            self.ensure_tools()
            # In the domains' order, whichever a first call registered first.
            own = sorted(await super().list_tools(), key=lambda tool: TOOL_ORDER.get(tool.name, len(TOOL_ORDER)))
        return own + [listed(name, upstream, tool) for name, upstream, tool in self.upstreams.tools()]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        started, ok = time.monotonic(), False
        try:
            result = await self._call_tool(name, arguments, context)
            ok = not getattr(result, "is_error", False)
            return result
        finally:
            self.calls.record(name, arguments, started, ok)

    async def _call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None
    ) -> CallToolResult | InputRequiredResult:
        self.ensure_tools(name)
        try:
            if self._tool_manager.get_tool(name) is None and self.upstreams.names_upstream(name) is not None:
                return await self._call_upstream(name, arguments, context)
            return await super().call_tool(name, arguments, context)
        except MCPError:
            raise
        except ToolError as exc:
            return _error_result(self._describe_failure(name, exc))
        except LoomkinError as exc:
            return _error_result(str(exc))

    async def _call_upstream(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None
    ) -> CallToolResult | InputRequiredResult:
        found = self.upstreams.tool(name) or await self.upstreams.wait_for_tool(name)
        if found is None:
            upstream = self.upstreams.names_upstream(name)
            assert upstream is not None
            raise UpstreamDown(upstream.down_message())
        from ..upstream._tools import forward, proxy_tool, read_only

        upstream, tool = found
        project = self.project()
        context = context or Context(mcp_server=self, subscriptions=self._subscriptions)
        if read_only(tool):  # nothing to ask the person: no tool of ours between the caller and the upstream
            result = await forward(name, arguments, project.upstreams, context)
            relay = self._relay()
            if relay is not None:  # the session's project and the call's path are settled: relay the next
                with contextlib.suppress(ValueError):  # (no request: `loomkin-mcp call`)
                    relay.learn(name, project, upstream, tool, context.session, context.protocol_version)
            return result
        cached = self._proxies.get((project.root, name))
        if cached is None or cached[0] is not tool:
            cached = (tool, proxy_tool(name, upstream, tool, project.upstreams, project.services.permissions))
            self._proxies[(project.root, name)] = cached
        # The proxy takes the caller's arguments whole; the upstream validates them against its schema.
        return await cached[1].run({"arguments": arguments}, context, convert_result=True)

    # -- resources and prompts ------------------------------------------------------------

    async def list_resources(self) -> list[types.Resource]:
        return await super().list_resources() + self.upstreams.resources()

    async def read_resource(self, uri: Any, context: Context[Any, Any] | None = None) -> Any:
        if not self.upstreams.owns_resource(str(uri)):
            try:
                return await super().read_resource(uri, context)
            except ResourceError as exc:
                # Our own failures (no project for this client, a store that cannot open) in their own words.
                if (cause := _our_cause(exc)) is not None:
                    raise ResourceError(one_line(str(cause))) from None
                raise
        try:
            result = await self.upstreams.read_resource(str(uri))
        except UpstreamDown as exc:
            raise ResourceError(str(exc)) from None
        return [_resource_contents(item) for item in result.contents]

    async def list_resource_templates(self) -> list[types.ResourceTemplate]:
        return await super().list_resource_templates() + self.upstreams.templates()

    async def list_prompts(self) -> list[types.Prompt]:
        self.ensure_tools(PROMPT)
        upstream = [prompt.model_copy(update={"name": name}) for name, prompt in self.upstreams.prompts()]
        return await super().list_prompts() + upstream

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> types.GetPromptResult | InputRequiredResult:
        self.ensure_tools(PROMPT)
        if self.upstreams.names_upstream(name) is None:
            self._check_prompt_call(name, arguments or {})
            try:
                return await super().get_prompt(name, arguments, context)
            except ValueError as exc:
                if (cause := _our_cause(exc)) is not None:
                    raise MCPError(code=types.INVALID_REQUEST, message=one_line(str(cause))) from None
                raise
        try:
            return await self.upstreams.get_prompt(name, arguments)
        except UpstreamDown as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from None

    def _check_prompt_call(self, name: str, arguments: dict[str, Any]) -> None:
        """Refuse an unknown prompt or wrong arguments as the spec says (-32602), in one sentence."""
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            known = ", ".join(
                sorted(p.name for p in self._prompt_manager.list_prompts()) + [n for n, _ in self.upstreams.prompts()]
            )
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"there is no prompt named '{one_line(name)}'; the prompts are: {known}.",
            )
        accepted = {argument.name: argument.required for argument in prompt.arguments or []}
        unknown = sorted(set(arguments) - set(accepted))
        missing = sorted(key for key, required in accepted.items() if required and key not in arguments)
        problems = []
        if unknown:
            problems.append("unknown argument(s) " + ", ".join(f"`{one_line(key)}`" for key in unknown))
        if missing:
            problems.append("missing " + ", ".join(f"`{key}`" for key in missing))
        if problems:
            takes = ", ".join(f"`{key}`" for key in accepted) or "no arguments"
            raise MCPError(
                code=types.INVALID_PARAMS, message=f"prompt {name}: {'; '.join(problems)}; it takes {takes}."
            )

    def _describe_failure(self, name: str, exc: ToolError) -> str:
        cause = _find_cause(exc)
        if isinstance(cause, LoomkinError):
            return str(cause)
        if isinstance(cause, ValidationError):
            return f"{name}: {_describe_validation(cause)}; see the tool's input schema."
        if self._tool_manager.get_tool(name) is None and self.upstreams.tool(name) is None:
            known = ", ".join(sorted([*TOOL_ORDER, *(exported for exported, _, _ in self.upstreams.tools())]))
            return f"there is no tool named '{name}'; the tools are: {known}."
        if cause is None:
            return f"{name}: {exc}"
        logger.error("%s failed unexpectedly", name, exc_info=cause)
        return (
            f"{name} failed unexpectedly ({type(cause).__name__}); the details are in loomkin-mcp's log on stderr, "
            "please report it."
        )


def build_server(
    projects: ProjectRegistry,
    log_bridge: McpLogBridge | None = None,
    asks_trust: TrustPromptWhen | None = "after initialize",
) -> LoomkinServer:
    """The server for the projects of `projects` (see `_roots` for which client is served which); `log_bridge` may
    already hold records logged while starting. `asks_trust`: when a client that can elicit is asked whether the
    person trusts its project (see TrustPromptWhen), None for never."""
    pinned = projects.project(projects.pinned) if projects.pinned is not None else None
    server = LoomkinServer(
        SERVER_NAME,
        title="Loomkin",
        version=__version__,
        instructions=render_instructions(pinned.workspace) if pinned is not None else ROOTS_INSTRUCTIONS,
    )
    server.projects = projects
    sessions = server.session_projects = SessionProjects(
        projects, lambda project: render_instructions(project.workspace)
    )
    server.calls = CallLog()
    server.started = time.monotonic()
    server._proxies = {}
    server.relay = server._relay_write = None

    def services() -> Services:
        return server.project().services

    def workspace() -> Workspace:
        return server.project().workspace

    server._domains_left = list(TOOL_DOMAINS)
    server._services_of_request = services
    projects.reserve(set(TOOL_ORDER))

    async def repo_map() -> str:
        return await services().repomap.render()

    def decisions() -> str:
        graph = services().decisions
        return f"{graph.context_text()}\n\n```mermaid\n{graph.export('mermaid')}\n```\n"

    resources = [
        ("loomkin://rules", "rules", "Project rules (LOOMKIN.md)", "text/markdown",
         "The project's LOOMKIN.md instructions and the permissions loomkin-mcp enforces.",
         lambda: render_rules(workspace())),
        (DIAGNOSTICS_URI, "diagnostics", "Language server diagnostics", "text/plain",
         "Current diagnostics of every open file, from all language servers; updated as they change.",
         lambda: render_diagnostics(services())),
        (UPSTREAMS_URI, "upstreams", "Upstream MCP servers", "text/plain",
         "Each upstream MCP server from [mcp].servers: its state, tool count and last error.",
         lambda: render_upstreams(server.project().upstreams)),
        (REPO_MAP_URI, "repo-map", "Repo map", "text/plain",
         "The project's key definitions ranked by references, within [context].max_repo_map_tokens.",
         repo_map),
        (DECISIONS_URI, "decisions", "Decision graph", "text/markdown",
         "Active goals and recent decisions (within [context].max_decision_context_tokens), and the graph in Mermaid.",
         decisions),
        (PROJECTS_URI, "projects", "Projects", "text/plain",
         "The project this session is served, the editor's other roots, and every project this process serves.",
         lambda: render_projects(server)),
    ]  # fmt: skip
    for uri, name, title, mime_type, description, render in resources:
        server.resource(uri, name=name, title=title, description=description, mime_type=mime_type)(render)

    # MCPServer serves neither logging/setLevel nor resources/subscribe; handshake-era clients send both.
    lowlevel = server._lowlevel_server
    # Upstream tools come and go: every transport (stdio, HTTP, SSE) tells clients the lists change.
    lowlevel.create_initialization_options = functools.partial(  # type: ignore[method-assign]
        lowlevel.create_initialization_options,
        NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
    )
    bridge = log_bridge or McpLogBridge().install()
    notifier = server.notifier = ClientNotifier(server._subscriptions, sessions.root_of)
    # The session's project first: everything after it (and every handler) serves that project.
    server.middleware.extend(
        [sessions.middleware, bridge.middleware, notifier.middleware, server.start_after_handshake]
    )
    lowlevel.add_request_handler("logging/setLevel", SetLevelRequestParams, bridge.set_level)
    own_uris = {uri for uri, *_ in resources}

    async def subscribe(ctx: Any, params: SubscribeRequestParams) -> types.EmptyResult:
        uri = str(params.uri)
        if uri not in own_uris and not server.upstreams.owns_resource(uri):
            missing = f"there is no resource {one_line(uri)}; resources/list names those there are."
            raise MCPError(code=types.INVALID_PARAMS, message=missing)
        return await notifier.subscribe(ctx, params)

    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, notifier.unsubscribe)
    # The person's answer: the editor that started us (stdio), or a client holding the daemon's token (HTTP).
    trust_prompt = TrustPrompt(sessions)
    if asks_trust == "after initialize":
        lowlevel.add_notification_handler("notifications/initialized", NotificationParams, trust_prompt.on_initialized)
    elif asks_trust == "on the first call":
        server.middleware.append(trust_prompt.on_first_call)
    lowlevel.add_notification_handler("notifications/roots/list_changed", NotificationParams, sessions.roots_changed)

    def opened(project: Project) -> None:
        # Once its services exist: its changes are told to its own clients.
        root = project.root
        project.services.lsp.on_diagnostics_changed(lambda: notifier.resource_updated(DIAGNOSTICS_URI, root))
        project.services.repomap.on_change(lambda: notifier.resource_updated(REPO_MAP_URI, root))
        project.services.decisions.sampler = lambda prompt, model: sample_from_client(notifier, prompt, model, root)
        project.upstreams.on_change(lambda: notifier.lists_changed(root))
        project.upstreams.on_change(lambda: notifier.resource_updated(UPSTREAMS_URI, root))

    projects.on_open(lambda project: project.when_made(opened))
    for project in projects.projects():
        project.when_made(opened)
    return server


@functools.cache
def _no_upstreams() -> UpstreamPool:
    """The upstreams of a client without a project: none."""
    from ..upstream import UpstreamPool

    return UpstreamPool(McpSection(), Path("/"))


class TrustPrompt:
    """Ask a client that can elicit whether the person trusts what its project asks for.

    Accept records trust for exactly that content and starts what was held back; decline, cancel or
    no answer leaves the project restricted. Each client is asked at most once per project.
    """

    def __init__(self, sessions: SessionProjects) -> None:
        self._sessions = sessions
        self._asked: set[tuple[Path, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_first_call(self, ctx: Any, call_next: Any) -> Any:
        """Middleware for HTTP: a client's first tool call waits for its answer, asked on that call's stream."""
        if ctx.method == "tools/call":
            try:
                project = self._sessions.current()
            except LoomkinError:
                return await call_next(ctx)
            await self._ask_once(project, ctx.session, related_request_id=ctx.request_id)
        return await call_next(ctx)

    async def on_initialized(self, ctx: Any, params: Any) -> None:
        # Not awaited here: the answers (roots, then trust) arrive through the read loop that delivered this notice.
        task = asyncio.ensure_future(self._after_initialized(ctx.session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_initialized(self, session: Any) -> None:
        try:
            project = await self._sessions.project_for(session)
        except LoomkinError:
            return  # the client's calls say why
        await self._ask_once(project, session)

    async def _ask_once(self, project: Project, session: Any, related_request_id: Any = None) -> None:
        key = (project.root, id(client_of(session)))
        held = project.workspace.trust.held_back()
        wanted = types.ClientCapabilities(elicitation=types.ElicitationCapability())
        if held and key not in self._asked and _can_ask(session, wanted):
            self._asked.add(key)
            await self._ask(project, session, held, related_request_id)

    async def _ask(self, project: Project, session: Any, held: list[Grant], related_request_id: Any) -> None:
        workspace = project.workspace
        message = (
            f"This project ({one_line(str(workspace.root))}) asks loomkin-mcp to:\n{workspace.trust.describe(held)}\n"
            "Trust exactly this content? Until you do, these are held back (the project is still served read-and-ask)."
        )
        schema = {"type": "object", "properties": {"trust": {"type": "boolean", "title": "Trust this project",
                                                            "default": False}}, "required": ["trust"]}  # fmt: skip
        try:
            with anyio.fail_after(TRUST_PROMPT_SECONDS):
                answer = await session.elicit_form(message, schema, related_request_id=related_request_id)
        except Exception:  # noqa: BLE001 - no answer (or no back channel) is a "no": the project stays restricted
            logger.info("the client did not answer the trust prompt; the project stays restricted", exc_info=True)
            return
        if answer.action != "accept" or not (answer.content or {}).get("trust"):
            logger.info("trust was declined for %s; the project stays restricted", workspace.root)
            return
        if [grant.material for grant in workspace.trust.held_back()] != [grant.material for grant in held]:
            logger.warning("the project's settings changed while the person was asked; nothing was trusted")
            return
        workspace.trust.grant()
        await apply_trust(project)


async def apply_trust(project: Project) -> None:
    """Start what trust let in: the project's upstreams now, its language servers at their next use."""
    logger.info("the person trusted %s; its upstream MCP servers and language servers are in force", project.root)
    project.upstreams.admit(project.workspace.config.mcp)
    await project.services.lsp.reconfigure()


def _can_ask(session: Any, wanted: types.ClientCapabilities) -> bool:
    try:
        return bool(session.check_client_capability(wanted))
    except Exception:  # noqa: BLE001 - a session of another era without capabilities cannot be asked
        return False


async def sample_from_client(notifier: ClientNotifier, prompt: str, model: str, project: Path) -> str | None:
    """Ask the newest connected client of `project` that offers sampling; None when none does (or it fails)."""
    wanted = types.ClientCapabilities(sampling=types.SamplingCapability())
    for session in reversed(notifier.sessions(project)):
        if not session.check_client_capability(wanted):
            continue
        try:
            with anyio.fail_after(SAMPLING_SECONDS):
                result = await session.create_message(
                    [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=prompt))],
                    max_tokens=60,
                    model_preferences=types.ModelPreferences(hints=[types.ModelHint(name=model)]),
                )
        except Exception:  # noqa: BLE001 - sampling is optional: the caller falls back
            logger.info("the client could not summarise a commit", exc_info=True)
            return None
        content = result.content
        return content.text if isinstance(content, types.TextContent) else None
    return None


def render_upstreams(upstreams: UpstreamPool) -> str:
    rows = upstreams.status()
    if not rows:
        return "No upstream MCP servers: add them to [mcp].servers in .loomkin.toml."
    lines = []
    for row in rows:
        via = f" via {row.transport}" if row.transport else ""
        error = f"; last error: {row.last_error}" if row.last_error else ""
        error += f"; fix: {row.fix}" if row.fix else ""
        lines.append(f"{row.name} ({row.target}): {row.state}{via}, {row.tools} tools, {row.restarts} restarts{error}")
    return redact("\n".join(lines))


def render_projects(server: LoomkinServer) -> str:
    """The project this session is served, the client's other roots, and every open project with its sessions."""
    lines = []
    try:
        served = server.project()
        lines.append(f"This session is served {served.root}.")
    except LoomkinError as exc:
        served = None
        lines.append(f"This session has no project: {exc}")
    if others := server.session_projects.other_roots():
        lines.append("Your editor's other roots (not served; reconnect with one first to serve it): "
                     + ", ".join(str(root) for root in others))  # fmt: skip
    lines.append("Open projects:")
    for project in server.projects.projects():
        count = len(server.notifier.sessions(project.root))
        trust = "trusted" if not project.workspace.trust.held_back() else "restricted until trusted"
        lines.append(f"- {project.root} ({trust}, {counted(count, 'session')})")
    return "\n".join(lines)


def render_diagnostics(services: Services) -> str:
    rows = services.lsp.collect_rows()
    return "\n".join(rows) if rows else "No diagnostics in the files the language servers have open."


def render_instructions(workspace: Workspace) -> str:
    rules = workspace.rules
    parts = [
        f"loomkin-mcp serves Loomkin's tools for the project at {workspace.root.as_posix()}. Paths are relative to "
        "that root. file_edit needs old_string copied exactly from file_read. shell runs one command without a "
        "shell, only when a LOOMKIN.md `Shell:` pattern allows it. Read loomkin://rules for the enforced rules."
    ]
    if notice := workspace.trust.notice():
        parts.append(f"Note: {notice}")
    if rules.text.strip():
        name = rules.path.name if rules.path else "LOOMKIN.md"
        parts.append(f"## Project instructions ({name})\n\n{rules.text.strip()}")
    return "\n\n".join(parts)


def render_rules(workspace: Workspace) -> str:
    rules = workspace.rules
    auto = workspace.config.permissions.auto_approve
    held = workspace.trust.held_back()

    def listed(items: tuple[str, ...] | list[str], empty: str) -> str:
        return ", ".join(f"`{item}`" for item in items) if items else empty

    enforced = [
        "## Enforced by loomkin-mcp",
        f"- Shell allowed: {listed(rules.shell_allowed, 'nothing (no `Shell:` rule, so shell is off)')}",
        f"- Shell denied: {listed(rules.shell_denied, 'nothing')}",
        f"- File write allowed: {listed(rules.write_allowed, 'anywhere in the project')}",
        f"- File write denied: {listed(rules.write_denied, 'nothing')} "
        "(plus .git/, .loomkin/, .loomkin.toml and LOOMKIN.md, always)",
        f"- Run without asking: {listed(auto, 'nothing')}",
    ]
    if held:
        enforced += [
            "",
            "## Held back until the person trusts this project",
            f"The project's own files ask for these; they are not in force (`loomkin-mcp trust --root {workspace.root}`"
            " lets the person review and allow them). Shell commands are off meanwhile.",
            workspace.trust.describe(held),
        ]
    enforced += ["", "## Read and not used by this server", workspace.config.teams.summary()]
    if rules.path is None:
        head = "No LOOMKIN.md in this project. Create one at the root to give instructions and allow shell commands."
    else:
        head = rules.text.strip()
    others = [
        f"## Instructions from {item.name} (guidance for the model; loomkin-mcp enforces LOOMKIN.md alone)\n\n"
        f"{item.text.strip()}"
        for item in workspace.other_instructions
    ]
    return "\n\n".join([head, "\n".join(enforced), *others]) + "\n"


def _resource_contents(item: types.TextResourceContents | types.BlobResourceContents) -> ReadResourceContents:
    if isinstance(item, types.TextResourceContents):
        return ReadResourceContents(content=item.text, mime_type=item.mime_type)
    return ReadResourceContents(content=base64.b64decode(item.blob), mime_type=item.mime_type)


def _error_result(message: str) -> CallToolResult:
    # Messages quote what the model sent; a newline or a bidi control in it must not split or disguise them.
    return CallToolResult(content=[TextContent(type="text", text=one_line(message))], is_error=True)


def _find_cause(exc: BaseException) -> BaseException | None:
    """The innermost exception under the SDK's ToolError wrappers."""
    cause = exc.__cause__
    while isinstance(cause, ToolError) and cause.__cause__ is not None:
        cause = cause.__cause__
    return cause


def _our_cause(exc: BaseException) -> LoomkinError | None:
    """Our own error under the SDK's wrapping of a failed resource read or prompt, if that is what it is."""
    cause = exc.__cause__
    while cause is not None and not isinstance(cause, LoomkinError):
        cause = cause.__cause__
    return cause


def _describe_validation(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "arguments"
        if item["type"] == "missing":
            problems.append(f"missing required argument `{field}`")
        elif item["type"] == "extra_forbidden":
            problems.append(f"unknown argument `{field}`")
        else:
            message = str(item["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")
            problems.append(f"`{field}` should be {message}")
    return "; ".join(problems[:5])
