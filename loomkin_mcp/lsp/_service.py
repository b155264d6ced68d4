"""Language servers for the workspace: which ones, and when to involve them.

The servers come from `[lsp].servers`, or, when none are configured, from the well-known
servers installed for the languages present in the project. Nothing starts, and nothing
heavy is imported, until a file of a server's language is touched: the session (pool,
diagnostics, navigation) lives in `_lsp_session` and loads then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loomkin_lsp_client import ServerSpec, detect_servers, known_server, languages_present, uncovered_languages

from .._confine import Confined
from .._errors import ToolInputError
from ..config import LspSection, LspServerEntry
from ..sandbox._service import Sandbox
from ..workspace import Workspace

if TYPE_CHECKING:
    from loomkin_lsp_client import ServerConnection, ServerStatus

    from ._session import LspSession

logger = logging.getLogger("loomkin_mcp.lsp")


@dataclass(frozen=True)
class ServerCheck:
    spec: ServerSpec
    detected: bool
    ok: bool
    server_version: str | None
    seconds: float
    error: str | None


# How much of a sample file `lsp-status` opens in a server to ask it something real.
_PROBE_BYTES = 256 * 1024


class LspService:
    def __init__(self, workspace: Workspace, sandbox: Sandbox) -> None:
        self._ws = workspace
        self._sandbox = sandbox
        self._specs: list[ServerSpec] | None = None
        self._present: set[str] | None = None
        self._session: LspSession | None = None
        self._listeners: list[Callable[[], None]] = []

    @property
    def _config(self) -> LspSection:
        return self._ws.config.lsp

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    def specs(self) -> list[ServerSpec]:
        """The configured servers, or the detected ones when `[lsp].servers` is empty."""
        if self._specs is None:
            if not self.enabled:
                self._specs = []
            elif self._config.servers:
                self._specs = [spec for entry in self._config.servers if (spec := spec_from_config(entry))]
            else:
                # Only the person's own programs: an executable inside the project never counts as one.
                self._specs = detect_servers(self._ws.root, self._languages())
        return self._specs

    def _languages(self) -> set[str]:
        if self._present is None:
            self._present = languages_present(self._ws.root)
        return self._present

    def missing(self) -> dict[str, list[str]]:
        """The project's languages no server handles: {how to install one: languages}."""
        return uncovered_languages(self._languages(), self.specs()) if self.enabled else {}

    def handles(self, path: Path) -> bool:
        return self.enabled and any(spec.handles(path) for spec in self.specs())

    @property
    def session(self) -> LspSession:
        """The running side; refuses with a sentence when `[lsp]` is off."""
        if not self.enabled:
            raise ToolInputError("language servers are off (`[lsp] enabled = false` in .loomkin.toml).")
        if self._session is None:
            from ._session import LspSession

            self._session = LspSession(self._ws, self.specs(), self._notify, self.launch)
        return self._session

    def launch(self, spec: ServerSpec, argv: list[str]) -> Confined:
        """How a language server starts: inside the sandbox, the project read-only (`services/sandbox.py`)."""
        return self._sandbox.language_server(spec.name, argv, spec.env)

    def on_diagnostics_changed(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    # -- around edits: cheap no-ops for files no server handles ----------------------------

    def _diagnoses(self, path: Path) -> bool:
        config = self._config  # (read once: each read checks the project's trust on disk)
        return config.enabled and config.diagnostics_on_edit and any(spec.handles(path) for spec in self.specs())

    def prefetch(self, path: Path) -> None:
        if self._diagnoses(path):
            self.session.prefetch(path)

    async def before_edit(self, path: Path) -> float:
        """Baseline diagnostics before `path` changes; returns the deadline for the edit's own."""
        if self._diagnoses(path):
            return await self.session.before_edit(path)
        return time.monotonic()

    async def after_edit(self, paths: list[Path], deadline: float) -> str | None:
        paths = [path for path in paths if self._diagnoses(path)]
        return await self.session.after_edit(paths, deadline) if paths else None

    def collect_rows(self) -> list[str]:
        """`path:line:col severity message (source) [server]` for every open document."""
        if self._session is None:
            return []
        return [f"{self._session.format_row(path, d)} [{name}]" for name, path, d in self._session.collect()]

    def diagnostic_summary(self, per_file: int) -> tuple[dict[str, dict[str, int]], dict[str, list[str]]]:
        """For every open document, in one pass: {file: {severity: count}}, and {file: its first `per_file`
        diagnostics as `line:col severity message (source) [server]`, worst first} (the status page's)."""
        if self._session is None:
            return {}, {}
        from ._session import SEVERITY_NAMES

        counts: dict[str, dict[str, int]] = {}
        rows: dict[str, list[tuple[int, str]]] = {}
        for name, path, diagnostic in self._session.collect():
            level = int(diagnostic.severity or 1)
            severity = SEVERITY_NAMES.get(level, "error")
            counts.setdefault(path, {})[severity] = counts.get(path, {}).get(severity, 0) + 1
            row = self._session.format_row(path, diagnostic).removeprefix(f"{path}:")
            rows.setdefault(path, []).append((level, f"{row} [{name}]"))
        worst_first = {path: sorted(found, key=lambda row: row[0]) for path, found in rows.items()}
        return counts, {path: [text for _, text in found[:per_file]] for path, found in worst_first.items()}

    def files_with_diagnostics(self) -> list[str]:
        if self._session is None:
            return []
        return sorted({path for _, path, _ in self._session.collect(threshold=2)})

    def files_changed(self, changes: list[tuple[Path, str]]) -> None:
        """Files changed on disk (`added`, `modified`, `deleted`): tell the servers that watch files."""
        if self._session is not None:
            self._session.files_changed(changes)

    def status(self) -> list[ServerStatus]:
        return self.session.pool.status() if self.enabled and self.specs() else []

    async def shutdown(self) -> None:
        if self._session is not None:
            await self._session.shutdown()

    async def reconfigure(self) -> None:
        """The servers in force changed (the project was trusted): stop the old ones; the next use starts the new."""
        session, self._session, self._specs = self._session, None, None
        if session is not None:
            await session.shutdown()

    async def check(self, grace: float = 1.0) -> list[ServerCheck]:
        """Start every server (spawn + initialize) at once, then stop it: what `lsp-status` shows.

        `grace`: how long each may take to exit before it is killed (it has shown what was asked).
        """
        import anyio

        detected = not self._config.servers
        # A program that is nowhere is told without loading the LSP client (0.5 s to import).
        results = [
            ServerCheck(spec, detected, False, None, 0.0, missing)
            for spec in self.specs()
            if (missing := spec.missing_program())
        ]
        startable = [spec for spec in self.specs() if not spec.missing_program()]
        if startable:
            from loomkin_lsp_client import LspError, ServerConnection

        async def one(spec: ServerSpec) -> None:
            connection = ServerConnection(spec, self._ws.root, launcher=self.launch)
            started = time.monotonic()
            try:
                await connection.start(self._config.start_timeout_ms / 1000)
                info = connection.server_info
                version = f"{info.name} {info.version or ''}".strip() if info else spec.name
                silent = await self._unanswered(connection)
                results.append(ServerCheck(spec, detected, silent is None, version, time.monotonic() - started, silent))
            except LspError as exc:
                results.append(ServerCheck(spec, detected, False, None, time.monotonic() - started, str(exc)))
            finally:
                await connection.stop(grace=grace)

        async with anyio.create_task_group() as group:
            for spec in startable:
                group.start_soon(one, spec)
        order = {spec.name: index for index, spec in enumerate(self.specs())}
        return sorted(results, key=lambda check: order[check.spec.name])

    async def _unanswered(self, connection: ServerConnection) -> str | None:
        """Why a started server is not usable: it answered initialize but not a real request (pyright did that
        while it waited for a configuration), or it died; None when it answers."""
        from lsprotocol import types as lsp

        from loomkin_lsp_client import LspError, ServerTimeout, first_file_for

        spec, timeout = connection.spec, self._config.request_timeout_ms / 1000
        sample = first_file_for(self._ws.root, spec)
        if sample is not None:
            document = lsp.TextDocumentIdentifier(uri=sample.as_uri())
            with open(sample, "rb") as handle:
                text = handle.read(_PROBE_BYTES).decode("utf-8", errors="replace")
            item = lsp.TextDocumentItem(uri=document.uri, language_id=spec.language_id(sample), version=1, text=text)
            connection.notify(lsp.TEXT_DOCUMENT_DID_OPEN, lsp.DidOpenTextDocumentParams(text_document=item))
            if connection.supports("document_symbol_provider"):
                method, params = lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL, lsp.DocumentSymbolParams(text_document=document)
            else:
                method = lsp.TEXT_DOCUMENT_HOVER
                params = lsp.HoverParams(text_document=document, position=lsp.Position(line=0, character=0))
            what = f"{method} on {self._ws.relative(sample)}"
        elif connection.supports("workspace_symbol_provider"):
            method, params, what = lsp.WORKSPACE_SYMBOL, lsp.WorkspaceSymbolParams(query=""), lsp.WORKSPACE_SYMBOL
        else:
            return None
        try:
            await connection.request(method, params, timeout)
        except ServerTimeout:
            return (
                f"{spec.name} answered initialize but not {what} within {timeout:.0f} s, so it cannot serve; "
                "check its version and settings, or its log with `--log-level debug`"
            )
        except LspError as exc:
            return str(exc)
        return None


def spec_from_config(entry: LspServerEntry) -> ServerSpec | None:
    known = known_server(entry.name) or known_server(entry.command)
    languages = tuple(entry.languages) or (tuple(sorted(known.languages)) if known else ())
    if not languages:
        logger.warning(
            '[lsp] server %s: no `languages` given and none known for it; add e.g. languages = ["python"].',
            entry.name,
        )
        return None
    return ServerSpec.build(
        entry.name,
        entry.command,
        languages,
        args=tuple(entry.args),
        env=dict(entry.env),
        root_markers=tuple(entry.root_markers) or (known.root_markers if known else ()),
        initialization_options=entry.initialization_options or None,
        settings=known.settings(entry.settings) if known else dict(entry.settings),
        loaded_log=known.loaded_log if known else "",
    )


def with_diagnostics(result: str, diagnostics: str | None) -> str:
    """An edit's result, followed by its language server's fresh diagnostics when there are any."""
    return f"{result}\n\n{diagnostics}" if diagnostics else result
