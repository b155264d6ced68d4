"""Projects: one root with its trust, rules and path guard (the Workspace) and everything that serves it — files,
search, shell, git, language servers, repo index, decision store and upstream MCP servers.

A project is made on demand and kept in a ProjectRegistry keyed by its resolved root, so every session serving the
same root shares one set of language servers, one index and one store, while other roots get their own. Nothing
here knows about MCP sessions: the server decides which root a session is served (`--root`, the client's roots, or
the current directory) and asks the registry for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from .._errors import ConfigError, LoomkinError, one_line
from ..workspace import Workspace, refused_root

if TYPE_CHECKING:
    from ..config import Settings
    from ..upstream import UpstreamPool
    from ._services import Services

logger = logging.getLogger("loomkin_mcp.project")

# How often new commits are looked for, to log them in the decision graph.
COMMIT_SCAN_SECONDS = 2.0
# How long closing a project may take: language servers get `shutdown`, `exit`, then a kill.
SHUTDOWN_SECONDS = 6
# How often idle projects are looked for, at most (an idle timeout shorter than this is checked as often as it).
REAP_SECONDS = 30.0


class Project:
    """One served root and its services; `run` keeps its upstreams connected and its commits logged until closed."""

    def __init__(self, workspace: Workspace, reserved_names: set[str]) -> None:
        self.workspace = workspace
        self._reserved_names = reserved_names
        self._services: Services | None = None
        self._upstreams: UpstreamPool | None = None
        self._made: list[Callable[[Project], None]] = []
        self.last_used = time.monotonic()
        self._requests = 0
        self.closed = False
        self._stopped = False
        self._scope: anyio.CancelScope | None = None

    @property
    def root(self) -> Path:
        return self.workspace.root

    # Made on first use: a session's `initialize` needs the workspace (its rules) and none of the services.
    @property
    def services(self) -> Services:
        if self._services is None:
            from ._services import Services

            self._services = Services.for_workspace(self.workspace)
            # The services, and the modules they loaded, live as long as the project: kept out of the
            # collector's sight, a full collection walks only what requests made.
            gc.freeze()
            self._announce()
        return self._services

    @property
    def upstreams(self) -> UpstreamPool:
        if self._upstreams is None:
            from ..upstream import UpstreamPool

            self._upstreams = UpstreamPool(self.workspace.config.mcp, self.workspace.root)
            self._upstreams.reserve(self._reserved_names)
            self._announce()
        return self._upstreams

    def made(self) -> tuple[Services | None, UpstreamPool | None]:
        """The services and upstreams as far as they exist, making none (for what only looks: the status page)."""
        return self._services, self._upstreams

    def reserve(self, names: set[str]) -> None:
        """Loomkin's own tool and prompt names, which no upstream may take."""
        self._reserved_names = names
        if self._upstreams is not None:
            self._upstreams.reserve(names)

    def when_made(self, listener: Callable[[Project], None]) -> None:
        """Call `listener` once the services and the upstreams both exist (at once if they do)."""
        self._made.append(listener)
        self._announce()

    def _announce(self) -> None:
        if self._services is not None and self._upstreams is not None:
            made, self._made = self._made, []
            for listener in made:
                listener(self)

    def touch(self) -> None:
        self.last_used = time.monotonic()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Around a request: the project is not idle while one is in flight, nor for its idle timeout after."""
        self._requests += 1
        try:
            yield
        finally:
            self._requests -= 1
            self.touch()

    def idle_for(self, now: float) -> float:
        """Seconds since its last request ended; 0 while one is in flight."""
        return 0.0 if self._requests else now - self.last_used

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Connect its upstreams (in the background: a slow one never delays a call) and watch its commits,
        until `close`; what the tools started is stopped on the way out."""
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with anyio.create_task_group() as group:
                    group.start_soon(self.upstreams.run)
                    group.start_soon(watch_commits, self.services)
                    task_status.started()
        finally:
            await self.stop()

    def close(self) -> None:
        """End `run`, which then stops what the project's tools started."""
        self.closed = True
        if self._scope is not None:
            self._scope.cancel()

    async def stop(self) -> None:
        """Stop the project's commands and language servers and close its store (once; shielded, so a cancelled
        daemon still stops what it started)."""
        if self._stopped:
            return
        self._stopped = self.closed = True
        services = self._services
        if services is not None:  # else never used: nothing was started
            services.shell.stop_all()
            with anyio.CancelScope(shield=True), anyio.move_on_after(SHUTDOWN_SECONDS):
                await services.lsp.shutdown()
                await services.repomap.shutdown()
                services.decisions.close()
        self.workspace.close()


class ProjectRegistry:
    """The projects a process serves, keyed by resolved root, each made on first use.

    `pinned` (`--root`) is the only project when given. `fallback` is the current directory, served to a client that
    declares no roots (None when it may not be served). `any_root`: a client's roots are followed wherever they
    are; else only beneath `fallback` (an HTTP daemon without a token: any local program can connect, and must not
    get any folder of the person's served by naming it). `idle_timeout`: a project no session has used for this long
    closes its servers (reopened by its next call); None keeps every project open (a stdio session's).
    """

    def __init__(
        self,
        settings_for: Callable[[Path], Settings],
        *,
        pinned: Path | None = None,
        fallback: Path | None = None,
        idle_timeout: float | None = None,
        any_root: bool = True,
    ) -> None:
        self.pinned = pinned
        self.fallback = fallback
        self.any_root = any_root
        self._settings_for = settings_for
        self._idle_timeout = idle_timeout
        self._projects: dict[Path, Project] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reserved_names: set[str] = set()
        self._opened: list[Callable[[Project], None]] = []
        self._background = anyio.Event()

    def reserve(self, names: set[str]) -> None:
        """Loomkin's own tool and prompt names, kept from every project's upstreams."""
        self._reserved_names = set(names)
        for project in self._projects.values():
            project.reserve(self._reserved_names)

    def on_open(self, listener: Callable[[Project], None]) -> None:
        """Call `listener` with each project as it is made (to route its change notices to clients)."""
        self._opened.append(listener)

    def projects(self) -> list[Project]:
        """The open projects, the most recently used first."""
        return sorted(self._projects.values(), key=lambda project: -project.last_used)

    def find(self, root: Path) -> Project | None:
        project = self._projects.get(Path(os.path.realpath(root)))
        return project if project is not None and not project.closed else None

    def refuses_client_root(self, root: Path) -> str | None:
        """Why a client's root `root` (resolved) is not followed, as the end of a sentence, or None."""
        if self.any_root:
            return None
        if self.fallback is None:
            return (
                "this daemon has no token and was started in a folder it does not serve, so it follows no client's "
                "roots; start it in your projects' folder, or give it a token (LOOMKIN_TOKEN or --token-file)"
            )
        if not root.is_relative_to(self.fallback):
            return (
                f"it is outside {self.fallback}, the folder this daemon serves projects beneath (it has no token, so "
                "any local program could name any folder); start it in a folder above this one, or give it a token "
                "(LOOMKIN_TOKEN or --token-file)"
            )
        return None

    def default_root(self) -> Path | None:
        """The root served where no client says otherwise: `--root`, else the current directory when allowed."""
        return self.pinned or self.fallback

    def project(self, root: Path) -> Project:
        """The open project at `root`, made (and started, when the registry runs) if needed.

        Raises ConfigError for a root that may not be served, or whose config cannot be read.
        """
        # The keys are resolved roots, and each request passes one back: looked up as given before resolving.
        real = root if root in self._projects else Path(os.path.realpath(root))
        found = self._projects.get(real)
        if found is not None and not found.closed:
            found.touch()
            return found
        if real != self.pinned and (why := refused_root(real)) is not None:
            raise ConfigError(f"{one_line(str(root))} cannot be served as a project because {why}; open a project "
                              "folder in the editor, or pass --root /path/to/project.")  # fmt: skip
        project = Project(Workspace(real, self._settings_for(real)), self._reserved_names)
        self._projects[real] = project
        logger.info("serving %s", real)
        if notice := project.workspace.trust.notice():
            logger.warning("%s", notice)
        for listener in self._opened:
            listener(project)
        self._start(project)
        return project

    def _start(self, project: Project) -> None:
        """Run the project's background work in the registry's task group, from the event loop or a worker thread."""
        if self._group is None or self._loop is None:
            return
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            self._group.start_soon(self._run_project, project)
        else:
            self._loop.call_soon_threadsafe(self._group.start_soon, self._run_project, project)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run every project's background work, close idle ones, and close them all when cancelled."""
        try:
            async with anyio.create_task_group() as group:
                self._group, self._loop = group, asyncio.get_running_loop()
                for project in list(self._projects.values()):
                    group.start_soon(self._run_project, project)
                if self._idle_timeout is not None:
                    group.start_soon(self._close_idle, self._idle_timeout)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._group = self._loop = None
            # Those whose background work never began (no client finished its handshake) stop here.
            await self.close_all()

    def begin_background(self) -> None:
        """Let the projects' background work start (upstream connections, commit watchers): held until a client
        has finished its handshake, so that a stdio session's `initialize` is answered first."""
        self._background.set()

    async def _run_project(self, project: Project) -> None:
        try:
            await self._background.wait()
            await project.run()
        except LoomkinError as exc:
            logger.warning("%s: %s", project.root, exc)
        finally:
            if self._projects.get(project.root) is project:
                del self._projects[project.root]

    async def _close_idle(self, timeout: float) -> None:
        while True:
            await anyio.sleep(min(REAP_SECONDS, timeout))
            now = time.monotonic()
            for project in list(self._projects.values()):
                if project.root != self.pinned and project.idle_for(now) >= timeout:
                    logger.info("closing %s: no session has used it for %.0f s", project.root, timeout)
                    project.close()

    async def close_all(self) -> None:
        """Close every project now, each stopping what its tools started (the CLI's one-shot commands, shutdown)."""
        for project in list(self._projects.values()):
            project.close()
            await project.stop()
        self._projects.clear()


async def watch_commits(services: Services) -> None:
    """Log new commits (made by anyone) while serving; one failed look is retried at the next."""
    decisions = services.decisions
    config = services.workspace.config.decisions
    if not (config.enabled and config.auto_log_commits and (services.workspace.root / ".git").exists()):
        return
    while True:
        try:
            await anyio.to_thread.run_sync(decisions.scan_commits)
        except LoomkinError as exc:
            logger.warning("auto_log_commits: %s", exc)
            return
        await anyio.sleep(COMMIT_SCAN_SECONDS)
