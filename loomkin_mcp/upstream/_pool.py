"""Every upstream in `[mcp].servers`, connected concurrently, and what they offer under our names."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from ..config import McpSection
from ._down import UpstreamDown
from ._forward import Caller
from ._names import SEPARATOR, exported_names
from ._upstream import Upstream, UpstreamStatus

logger = logging.getLogger("loomkin_mcp.upstream")

RESERVED_SCHEME = "loomkin:"
# A URI read through an upstream's resource template is matched only up to this length.
MAX_TEMPLATED_URI_CHARS = 8192


def template_pattern(uri_template: str) -> Any:
    """A linear-time (RE2) pattern for the URIs an RFC 6570 template names; None for one it cannot read.

    `{name}` stands for one path segment; `{+name}`, `{/name*}` and the like for any run of characters.
    """
    import re

    import re2

    parts = re.split(r"(\{[^{}]*\})", uri_template)
    body = "".join(
        ("[^/?#]*" if part[1:2].isalnum() or part[1:2] == "_" else ".*") if part.startswith("{") else re.escape(part)
        for part in parts
    )
    try:
        return re2.compile(f"(?s){body}")
    except re2.error:
        return None


ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]


class UpstreamPool:
    def __init__(self, config: McpSection, root: Path) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._root = root
        self._max_restarts = config.max_restarts_per_minute
        self._upstreams = [Upstream(entry, root, self._changed, self._max_restarts) for entry in config.servers]
        self._tools: dict[str, tuple[Upstream, types.Tool]] = {}
        self._prompts: dict[str, tuple[Upstream, types.Prompt]] = {}
        self._resources: dict[str, Upstream] = {}
        self._templates: list[tuple[Upstream, types.ResourceTemplate, Any]] = []
        self._reserved: frozenset[str] = frozenset()
        self._group: anyio.abc.TaskGroup | None = None

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def reserve(self, names: set[str]) -> None:
        """Names of loomkin's own tools and prompts, which no upstream may take (what is exported is listed again)."""
        self._reserved = frozenset(names)
        if self._tools or self._prompts:
            self._changed()

    async def run(self) -> None:
        """Keep every upstream connected until cancelled (at shutdown); one failing never stops the rest."""
        async with anyio.create_task_group() as group:
            self._group = group
            for upstream in self._upstreams:
                group.start_soon(upstream.run)
            await anyio.sleep_forever()

    def admit(self, config: McpSection) -> None:
        """Start the upstreams of `config` not running yet (the person has just trusted them)."""
        running = {upstream.name for upstream in self._upstreams}
        for entry in config.servers:
            if entry.name in running:
                continue
            upstream = Upstream(entry, self._root, self._changed, self._max_restarts)
            self._upstreams.append(upstream)
            if self._group is not None:
                self._group.start_soon(upstream.run)

    def _changed(self) -> None:
        tools: dict[str, tuple[Upstream, types.Tool]] = {}
        prompts: dict[str, tuple[Upstream, types.Prompt]] = {}
        resources: dict[str, Upstream] = {}
        templates: list[tuple[Upstream, types.ResourceTemplate, Any]] = []
        for upstream in self._upstreams:
            by_name = {tool.name: tool for tool in upstream.tools}
            for exported, original in exported_names(upstream.name, list(by_name)).items():
                if exported not in self._reserved:
                    tools[exported] = (upstream, by_name[original])
            prompts_by_name = {prompt.name: prompt for prompt in upstream.prompts}
            for exported, original in exported_names(upstream.name, list(prompts_by_name)).items():
                if exported not in self._reserved:
                    prompts[exported] = (upstream, prompts_by_name[original])
            for resource in self._own_resources(upstream):
                resources.setdefault(str(resource.uri), upstream)
            for template in upstream.templates:
                if not template.uri_template.lower().startswith(RESERVED_SCHEME):
                    templates.append((upstream, template, template_pattern(template.uri_template)))
        self._tools, self._prompts, self._resources, self._templates = tools, prompts, resources, templates
        for listener in self._listeners:
            listener()

    # -- what we re-export ----------------------------------------------------------------

    def tools(self) -> list[tuple[str, Upstream, types.Tool]]:
        return [(name, upstream, tool) for name, (upstream, tool) in self._tools.items()]

    def tool(self, name: str) -> tuple[Upstream, types.Tool] | None:
        return self._tools.get(name)

    async def wait_for_tool(self, name: str) -> tuple[Upstream, types.Tool] | None:
        """`name`'s upstream tool, after waiting for its server to finish connecting (or to try again)."""
        upstream = self.names_upstream(name)
        if upstream is not None and upstream.session is None and upstream.state in ("connecting", "failed"):
            await upstream.retry(upstream.connect_timeout)
        return self._tools.get(name)

    def names_upstream(self, name: str) -> Upstream | None:
        """The upstream a `<server>__…` name belongs to, connected or not."""
        prefix = name.split(SEPARATOR, 1)[0]
        return next((u for u in self._upstreams if SEPARATOR in name and u.name == prefix), None)

    def prompts(self) -> list[tuple[str, types.Prompt]]:
        return [(name, prompt) for name, (_, prompt) in self._prompts.items()]

    def resources(self) -> list[types.Resource]:
        return [resource for upstream in self._upstreams for resource in self._own_resources(upstream)]

    @staticmethod
    def _own_resources(upstream: Upstream) -> list[types.Resource]:
        """An upstream's resources, less any under `loomkin://`: that scheme is loomkin's alone."""
        return [r for r in upstream.resources if not str(r.uri).lower().startswith(RESERVED_SCHEME)]

    def status(self) -> list[UpstreamStatus]:
        return [upstream.status() for upstream in self._upstreams]

    async def wait_settled(self, timeout: float) -> None:
        """Until every upstream has connected or failed once (at most `timeout` seconds)."""
        async with anyio.create_task_group() as group:
            for upstream in self._upstreams:
                group.start_soon(upstream.wait_settled, timeout)

    # -- calls ----------------------------------------------------------------------------

    async def call_tool(
        self, name: str, arguments: dict[str, Any], progress: ProgressCallback | None, caller: Caller | None = None
    ) -> types.CallToolResult:
        """Call `name` upstream; while it runs, the upstream's own requests (sampling…) go to `caller`."""
        found = self._tools.get(name)
        if found is None or caller is None:
            return await self._call_tool(name, arguments, progress)
        callers = found[0].forwarder.callers
        callers.append(caller)
        try:
            return await self._call_tool(name, arguments, progress)
        finally:
            callers.remove(caller)

    async def _call_tool(
        self, name: str, arguments: dict[str, Any], progress: ProgressCallback | None
    ) -> types.CallToolResult:
        found = self._tools.get(name)
        if found is None:
            upstream = self.names_upstream(name)
            raise UpstreamDown(upstream.down_message() if upstream else f"there is no tool named '{name}'")
        upstream, tool = found
        session = upstream.session
        if session is None:
            raise UpstreamDown(upstream.down_message())
        timeout = upstream.entry.timeout_ms / 1000
        try:
            result = await session.call_tool(
                tool.name, arguments, read_timeout_seconds=timeout, progress_callback=progress
            )
        except MCPError as exc:
            raise UpstreamDown(await call_failure(upstream, tool.name, exc, timeout)) from None
        if not isinstance(result, types.CallToolResult):
            raise UpstreamDown(f"{upstream.name} answered {tool.name} with a result loomkin-mcp cannot pass on")
        return result

    async def get_prompt(self, name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
        found = self._prompts.get(name)
        upstream = found[0] if found else self.names_upstream(name)
        if found is None or upstream is None or upstream.session is None:
            raise UpstreamDown(upstream.down_message() if upstream else f"there is no prompt named '{name}'")
        try:
            return await upstream.session.get_prompt(found[1].name, arguments)
        except MCPError as exc:
            raise UpstreamDown(f"{upstream.name} could not give prompt {found[1].name}: {exc.error.message}") from None

    def templates(self) -> list[types.ResourceTemplate]:
        return [template for upstream, template, _ in self._templates]

    def owns_resource(self, uri: str) -> bool:
        return self._resource_owner(uri) is not None

    def _resource_owner(self, uri: str) -> Upstream | None:
        """The upstream listing `uri`, else the first whose resource template it fits (linear-time match)."""
        if uri in self._resources:
            return self._resources[uri]
        if len(uri) <= MAX_TEMPLATED_URI_CHARS:
            for upstream, _, pattern in self._templates:
                if pattern is not None and pattern.fullmatch(uri):
                    return upstream
        return None

    async def read_resource(self, uri: str) -> types.ReadResourceResult:
        upstream = self._resource_owner(uri)
        if upstream is None or upstream.session is None:
            raise UpstreamDown(upstream.down_message() if upstream else f"no upstream serves {uri}")
        try:
            return await upstream.session.read_resource(uri)
        except MCPError as exc:
            raise UpstreamDown(f"{upstream.name} could not read {uri}: {exc.error.message}") from None


async def call_failure(upstream: Upstream, tool: str, exc: MCPError, timeout: float) -> str:
    """What a failed call to `tool` of `upstream` tells the caller (a late one asks whether the upstream still
    answers at all)."""
    if exc.error.code == types.REQUEST_TIMEOUT:
        late = f"{upstream.name}'s {tool} did not answer within {timeout:g} s and was cancelled"
        if await upstream.answers_ping(timeout):
            return late
        return f"{late}; {upstream.name} did not answer a ping either, so it is being restarted."
    if exc.error.code == types.CONNECTION_CLOSED:
        reason = await upstream.connection_lost()
        return f"{tool} was cut short: {reason}; it is being restarted, try again shortly."
    return f"{upstream.name}'s {tool} failed: {exc.error.message}"
