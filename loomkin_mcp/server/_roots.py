"""Which project each client is served: `--root` when given; else the client's first root (asked with `roots/list`
on its first request, asked again when it says its roots changed); else, for a client that declares no roots, the
current directory — never `/`, the home directory or another place `refused_root` names.

A middleware puts the caller's project in a context variable for the request's handlers (`current_project`). A
client whose project cannot be had still lists loomkin's own tools; each call then fails with one sentence saying
why and what to do.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import mcp_types as types

from .._errors import ConfigError, LoomkinError, one_line
from ..project._registry import Project, ProjectRegistry
from ..workspace import refused_root
from ._subscriptions import client_of

logger = logging.getLogger("loomkin_mcp.roots")

# How long a client may take to answer roots/list before its call fails saying so.
ROOTS_TIMEOUT_SECONDS = 30.0
# Requests that need no project: the handshake and liveness.
_PROJECTLESS = frozenset({"initialize", "ping"})
# Said at initialize to a client that declares roots: its project is known only once it answers roots/list.
ROOTS_INSTRUCTIONS = (
    "loomkin-mcp serves Loomkin's tools for the project open in the editor (its first root). Paths are relative "
    "to that root. file_edit needs old_string copied exactly from file_read. Read loomkin://rules for the project's "
    "instructions and the enforced rules."
)

_current: ContextVar[Project | LoomkinError | None] = ContextVar("loomkin_project", default=None)
_client: ContextVar[Any] = ContextVar("loomkin_client", default=None)


class SessionProjects:
    """Each client's project, found once per client (and again when its roots change)."""

    def __init__(self, registry: ProjectRegistry, instructions: Callable[[Project], str]) -> None:
        self._registry = registry
        self._instructions = instructions
        self._roots: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()
        self._others: weakref.WeakKeyDictionary[Any, list[Path]] = weakref.WeakKeyDictionary()
        self._asking: dict[Any, asyncio.Future[Path]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def current(self) -> Project:
        """The project of the request being handled; outside any request (the CLI, the status page) the
        default one. Raises the reason a client has no project, as one sentence."""
        found = _current.get()
        if isinstance(found, LoomkinError):
            raise found
        if isinstance(found, Project):
            return found if not found.closed else self._registry.project(found.root)
        root = self._registry.default_root()
        if root is None:
            raise ConfigError("no project is open yet; connect a client whose editor has a project folder open.")
        return self._registry.project(root)

    def root_of(self, client: Any) -> Path | None:
        """The root `client` is served, when known."""
        return self._registry.pinned or self._roots.get(client)

    async def middleware(self, ctx: Any, call_next: Any) -> Any:
        if ctx.method == "initialize":
            return self._with_instructions(ctx.params or {}, await call_next(ctx))
        if ctx.method in _PROJECTLESS or ctx.method.startswith("notifications/"):
            return await call_next(ctx)
        try:
            project: Project | LoomkinError = await self.project_for(ctx.session, ctx.request_id)
        except LoomkinError as exc:
            project = exc
        token, client = _current.set(project), _client.set(client_of(ctx.session))
        try:
            if isinstance(project, LoomkinError):
                return await call_next(ctx)
            with project.serving():
                return await call_next(ctx)
        finally:
            _current.reset(token)
            _client.reset(client)

    async def project_for(self, session: Any, request_id: Any = None) -> Project:
        """`session`'s project, asking its client for its roots the first time. Raises ConfigError when none can
        be served."""
        if self._registry.pinned is not None:
            return self._registry.project(self._registry.pinned)
        client = client_of(session)
        root = self._roots.get(client)
        if root is None:
            pending = self._asking.get(client)
            if pending is None:
                pending = asyncio.ensure_future(self._ask(session, client, request_id))
                self._asking[client] = pending
                pending.add_done_callback(lambda _: self._asking.pop(client, None))
            root = await asyncio.shield(pending)
            self._roots[client] = root
        return self._registry.project(root)

    async def roots_changed(self, ctx: Any, params: Any) -> None:
        """The client's roots changed: its next request is served its new first root (asked now, so the log
        says which). Not awaited here: the answer arrives through the read loop that delivered this notice."""
        session = ctx.session
        self._roots.pop(client_of(session), None)
        task = asyncio.ensure_future(self._settle(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, session: Any) -> None:
        try:
            await self.project_for(session)
        except LoomkinError as exc:
            logger.warning("%s", exc)

    async def _ask(self, session: Any, client: Any, request_id: Any) -> Path:
        if not _declares_roots(session):
            if self._registry.fallback is None:
                raise ConfigError(_refusal("your editor declares no roots"))
            return self._registry.fallback
        from mcp.shared.exceptions import NoBackChannelError
        from mcp.shared.message import ServerMessageMetadata

        metadata = ServerMessageMetadata(related_request_id=request_id)
        try:
            with anyio.fail_after(ROOTS_TIMEOUT_SECONDS):
                result = await session.send_request(types.ListRootsRequest(), types.ListRootsResult, metadata=metadata)
        except NoBackChannelError:
            # A 2026-era request without a back channel cannot be asked: served as a client without roots.
            if self._registry.fallback is None:
                raise ConfigError(_refusal("your editor's roots cannot be asked for on this connection")) from None
            return self._registry.fallback
        except TimeoutError:
            raise ConfigError(
                _refusal(f"your editor did not answer roots/list in {ROOTS_TIMEOUT_SECONDS:.0f} s")
            ) from None
        except Exception as exc:  # noqa: BLE001 - the client's error, said in one sentence
            raise ConfigError(_refusal(f"your editor's roots/list failed ({one_line(str(exc))})")) from None
        roots, refusals = _directories(result.roots, self._registry.refuses_client_root)
        if not roots:
            why = refusals[0] if refusals else "your editor's roots list is empty"
            raise ConfigError(f"{why}; open a project folder in the editor, or pass --root /path/to/project.")
        for refusal in refusals:
            logger.warning("%s; it is not served.", refusal)
        served = roots[0]
        of = f" of {len(roots)} (loomkin://projects lists them)" if len(roots) > 1 else ""
        logger.info("serving %s, the editor's first root%s", served, of)
        self._others[client] = roots[1:]
        return served

    def _with_instructions(self, params: dict[str, Any], result: Any) -> Any:
        """The answer to initialize, with the instructions of the project this client will be served when known
        now; a client that declares no roots and may not be served the current directory is refused here."""
        if self._registry.pinned is not None or not isinstance(result, dict):
            return result
        if "roots" in (params.get("capabilities") or {}):
            return {**result, "instructions": ROOTS_INSTRUCTIONS}
        if self._registry.fallback is None:
            from mcp.shared.exceptions import MCPError

            raise MCPError(code=types.INVALID_REQUEST, message=_refusal("your editor declares no roots"))
        return {**result, "instructions": self._instructions(self._registry.project(self._registry.fallback))}

    def other_roots(self) -> list[Path]:
        """The calling client's roots after the first (not served; listed by loomkin://projects)."""
        client = _client.get()
        return self._others.get(client, []) if client is not None else []


def _declares_roots(session: Any) -> bool:
    try:
        return bool(session.check_client_capability(types.ClientCapabilities(roots=types.RootsCapability())))
    except Exception:  # noqa: BLE001 - a session without recorded capabilities declares none
        return False


def _refusal(why: str) -> str:
    return (
        f"loomkin-mcp was started in {Path.cwd()} without --root and {why}; pass --root /path/to/project in the "
        "editor's config, or open a project folder in the editor."
    )


def _directories(roots: list[types.Root], refuses: Callable[[Path], str | None]) -> tuple[list[Path], list[str]]:
    """The roots that can be served, as real paths, and a sentence for each that cannot."""
    found: list[Path] = []
    refused: list[str] = []
    for root in roots:
        parts = urlsplit(str(root.uri))
        if parts.scheme != "file":
            refused.append(f"your editor's root {one_line(str(root.uri))} is not a local folder")
            continue
        path = Path(unquote(parts.path))
        why = refused_root(path) or refuses(path.resolve())
        if why is None:
            found.append(path.resolve())
        else:
            refused.append(f"your editor's root {one_line(str(path))} cannot be served because {why}")
    return found, refused
