"""The working half of the LSP service: the server pool, diagnostics around edits, navigation.

Loaded by `LspService` on the first file of a configured language: it pulls in pygls and
lsprotocol, which the initialize path must not pay for.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.uris import to_fs_path

from loomkin_lsp_client import (
    LanguageServerPool,
    Launcher,
    LspError,
    ServerConnection,
    ServerSpec,
    Synced,
    apply_edits,
    offset_of,
    position_from_user,
    position_of,
    user_column,
)

from .._errors import PathRefused, ToolInputError
from ..workspace import Workspace

logger = logging.getLogger("loomkin_mcp.lsp")

SEVERITY_NAMES = {1: "error", 2: "warning", 3: "information", 4: "hint"}
SEVERITY_RANK = {name: rank for rank, name in SEVERITY_NAMES.items()}
MAX_REPORT_LINES = 20
MAX_RESULTS = 100
# Files larger than this are not sent to language servers.
MAX_SYNC_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    """A resolved position in a document, for definition / references / hover / rename."""

    path: Path
    uri: str
    text: str
    position: lsp.Position
    connection: ServerConnection


class LspSession:
    def __init__(
        self, workspace: Workspace, specs: list[ServerSpec], on_diagnostics: Callable[[], None], launcher: Launcher
    ) -> None:
        self._ws = workspace
        self._config = workspace.config.lsp
        self._background: set[asyncio.Task[Any]] = set()
        self._startup_waits: dict[Path, tuple[list[str], float]] = {}
        """Servers an edit of that path waited for while they started, and how long it waited."""
        logger.info(
            "language servers: %s",
            ", ".join(f"{s.name} ({', '.join(sorted(s.languages))})" for s in specs) or "none",
        )
        self.pool = LanguageServerPool(
            specs,
            workspace.root,
            start_timeout=self._config.start_timeout_ms / 1000,
            max_open_documents=self._config.max_open_documents,
            max_restarts_per_minute=self._config.max_restarts_per_minute,
            on_diagnostics=lambda uri: on_diagnostics(),
            launcher=launcher,
        )

    def files_changed(self, changes: list[tuple[Path, str]]) -> None:
        kinds = {"added": lsp.FileChangeType.Created, "deleted": lsp.FileChangeType.Deleted}
        self.pool.files_changed([(path, kinds.get(kind, lsp.FileChangeType.Changed)) for path, kind in changes])

    async def shutdown(self) -> None:
        for task in self._background:
            task.cancel()
        # Awaited: a cancelled start stops its server on its way out.
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.pool.shutdown()

    # -- diagnostics around edits ---------------------------------------------------------

    def prefetch(self, path: Path) -> None:
        """Open a file the model just read, in the background: its edit then has a baseline ready."""
        if not _small_enough(path):
            return
        task = asyncio.ensure_future(self._prefetch(path))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _prefetch(self, path: Path) -> None:
        # The sync coroutine is made here, once the task runs: a task cancelled before it starts (the one-shot
        # `loomkin-mcp call` ends at once) then leaves no coroutine behind that was never awaited.
        await self._quietly(self.pool.sync(path))

    async def before_edit(self, path: Path) -> float:
        """Make sure the server has the file's current text and its diagnostics; returns the deadline.

        A server still starting is waited for (up to `start_timeout_ms`): the diagnostics' time counts
        from when it is up, so a slow start costs the first edit neither its baseline nor its report.
        """
        began = time.monotonic()
        if not path.is_file() or not _small_enough(path):
            return began + self._config.diagnostics_timeout_ms / 1000
        synced = await self._quietly(self.pool.sync(path)) or []
        up = time.monotonic()
        started = [item.connection.spec.name for item in synced if (item.connection.ready_at or 0) > began]
        if started:
            self._startup_waits[path] = (started, up - began)
        # The baseline may take at most half the time: the edit's own diagnostics matter more.
        baseline_by = up + self._config.diagnostics_timeout_ms / 2000
        for item in synced:
            await self._fresh(item, baseline_by)
        return up + self._config.diagnostics_timeout_ms / 1000

    async def after_edit(self, paths: list[Path], deadline: float) -> str | None:
        """Diagnostics of the edited files, marked introduced / already there / resolved."""
        self.files_changed([(path, "modified") for path in paths])
        paths = [path for path in paths if _small_enough(path)]
        if not paths:
            return None
        reports = await asyncio.gather(*(self._report(path, deadline) for path in paths))
        return "\n".join(line for report in reports for line in report) or None

    async def _report(self, path: Path, deadline: float) -> list[str]:
        relative = self._ws.relative(path)
        started, waited = self._startup_waits.pop(path, ([], 0.0))
        try:
            synced = await self.pool.sync(path)
        except LspError as exc:
            return [f"Diagnostics unavailable for {relative}: {str(exc).rstrip('.')}."]
        lines = [f"({', '.join(started)} was starting: this edit waited {waited:.1f} s for it.)"] if started else []
        # The edit's own diagnostics get at least half of the budget, whatever the baseline took.
        deadline = max(deadline, time.monotonic() + self._config.diagnostics_timeout_ms / 2000)
        for item in synced:
            name = item.connection.spec.name
            after = await self._fresh(item, deadline)
            if after is None:
                budget = self._config.diagnostics_timeout_ms
                lines.append(
                    f"{name} reported no diagnostics for {relative} within {budget} ms"
                    f"{' (it is still indexing)' if item.connection.busy else ''}; call lsp_diagnostics later."
                )
                continue
            lines.extend(self._render_edit_report(name, relative, item.baseline, after, self._unparsable(path)))
        return lines

    async def _fresh(self, item: Synced, deadline: float) -> list[lsp.Diagnostic] | None:
        """Diagnostics for exactly the synced version: pulled when the server offers it, else published."""
        connection = item.connection
        remaining = max(deadline - time.monotonic(), 0.05)
        try:
            if connection.pulls_diagnostics:
                return await connection.pull_diagnostics(item.uri, item.version, remaining)
            published = await connection.wait_published(
                item.uri, item.version, item.sent_at, remaining, settled=item.settled
            )
            if published is None and connection.pulls_diagnostics:  # it registered pull meanwhile
                return await connection.pull_diagnostics(item.uri, item.version, max(deadline - time.monotonic(), 0.05))
            if published is not None and not published.items and connection.busy:
                # An empty list while the server is still indexing is not trustworthy: wait for the end.
                if await connection.wait_until_idle(max(deadline - time.monotonic(), 0)):
                    published = connection.diagnostics.get(item.uri, published)
            return None if published is None else published.items
        except LspError as exc:
            logger.info("no diagnostics of %s from %s: %s", self._ws.relative(Path(to_fs_path(item.uri) or item.uri)),
                        connection.spec.name, exc)  # fmt: skip
            return None

    def _unparsable(self, path: Path) -> int | None:
        """The first line tree-sitter cannot parse in the text the servers were sent, or None."""
        from ..syntax import first_error_line

        text = self.pool.document_text(path)
        return first_error_line(self._ws.relative(path), text) if text is not None else None

    def _render_edit_report(
        self,
        name: str,
        relative: str,
        before: list[lsp.Diagnostic] | None,
        after: list[lsp.Diagnostic],
        unparsable: int | None = None,
    ) -> list[str]:
        earlier = Counter(_identity(d) for d in before or [])
        marked: list[tuple[lsp.Diagnostic, str]] = []
        for diagnostic in _sorted(after):
            key = _identity(diagnostic)
            if before is None:
                marked.append((diagnostic, ""))
            elif earlier[key] > 0:
                earlier[key] -= 1
                marked.append((diagnostic, "already there"))
            else:
                marked.append((diagnostic, "introduced by this edit"))
        # What is left of the baseline after matching is what the edit resolved.
        resolved = []
        for diagnostic in _sorted(before or []):
            key = _identity(diagnostic)
            if earlier[key] > 0:
                earlier[key] -= 1
                resolved.append(diagnostic)
        introduced = sum(1 for _, mark in marked if mark.startswith("introduced"))
        unchecked = 0
        if unparsable is not None and resolved:
            # A server that stops at a syntax error drops its other findings: they are not fixed, only unchecked.
            unchecked, resolved = len(resolved), []
        if not marked and not resolved and not unchecked:
            return [f"{name}: no problems in {relative}."]
        if not marked and not resolved:
            lines = [f"{name} reported no problems in {relative}:"]
        elif not marked:
            lines = [f"{name}: no problems in {relative}; this edit resolved {len(resolved)}:"]
        elif before is None:
            lines = [f"{name} diagnostics for {relative}: {len(after)}:"]
        else:
            changes = f"{introduced} introduced by this edit, {len(resolved)} resolved"
            lines = [f"{name} diagnostics for {relative}: {len(after)} ({changes}):"]
        for diagnostic, mark in marked[:MAX_REPORT_LINES]:
            lines.append("  " + self._format(relative, diagnostic) + (f" — {mark}" if mark else ""))
        if len(marked) > MAX_REPORT_LINES:
            lines.append(f"  … {len(marked) - MAX_REPORT_LINES} more; lsp_diagnostics lists them all.")
        for diagnostic in resolved[:MAX_REPORT_LINES]:
            lines.append("  resolved: " + self._format(relative, diagnostic))
        if unchecked:
            lines.append(
                f"  ({unchecked} earlier problem(s) not shown as resolved: {relative} does not parse from line "
                f"{unparsable}, so {name} may not have checked them.)"
            )
        return lines

    def format_row(self, relative: str, diagnostic: lsp.Diagnostic) -> str:
        return self._format(relative, diagnostic)

    def _format(self, relative: str, diagnostic: lsp.Diagnostic, text: str | None = None) -> str:
        start = diagnostic.range.start
        column = start.character + 1 if text is None else user_column(text, start)
        severity = SEVERITY_NAMES.get(int(diagnostic.severity or 1), "error")
        source = f" ({diagnostic.source})" if diagnostic.source else ""
        message = " ".join(diagnostic.message.split())
        return f"{relative}:{start.line + 1}:{column} {severity} {message}{source}"

    # -- lsp_diagnostics ------------------------------------------------------------------

    async def diagnostics(self, file_path: str | None, severity: str | None, server: str | None) -> str:
        threshold = self._severity_threshold(severity)
        if file_path is None:
            return self._workspace_summary(threshold, server)
        path = self._ws.resolve(file_path)
        relative = self._ws.relative(path)
        if not path.is_file():
            raise ToolInputError(f"'{relative}' is not a file; give a source file's path.")
        if not self.pool.handles(path):
            raise ToolInputError(f"no language server is configured for '{relative}'; see `loomkin-mcp lsp-status`.")
        synced = await self._sync_or_explain(path, server)
        # Counted from when the servers are up: a first call that starts one does not spend its budget on that.
        deadline = time.monotonic() + self._config.diagnostics_timeout_ms / 1000
        lines = []
        for item in synced:
            found = await self._fresh(item, deadline)
            name = item.connection.spec.name
            if found is None:
                lines.append(f"{name} reported no diagnostics for {relative} in time; try again shortly.")
                continue
            shown = [d for d in _sorted(found) if int(d.severity or 1) <= threshold]
            if not shown:
                lines.append(f"{name}: no problems in {relative}{self._severity_note(severity)}.")
                continue
            lines.append(f"{name}: {len(shown)} diagnostic(s) in {relative}{self._severity_note(severity)}:")
            lines.extend("  " + self._format(relative, d) for d in shown[:MAX_RESULTS])
        return "\n".join(lines)

    def _workspace_summary(self, threshold: int, server: str | None) -> str:
        rows = self.collect(threshold, server)
        if not rows:
            opened = sum(s.open_documents for s in self.pool.status())
            return f"No diagnostics in the {opened} open file(s); pass file_path to check a file."
        counts = Counter(SEVERITY_NAMES.get(int(d.severity or 1), "error") for _, _, d in rows)
        head = ", ".join(f"{counts[n]} {n}(s)" for n in ("error", "warning", "information", "hint") if counts[n])
        lines = [f"Diagnostics in open files: {head}."]
        lines.extend(f"  {self._format(relative, d)} [{name}]" for name, relative, d in rows[:MAX_RESULTS])
        if len(rows) > MAX_RESULTS:
            lines.append(f"  … {len(rows) - MAX_RESULTS} more; pass file_path to see one file.")
        return "\n".join(lines)

    def collect(self, threshold: int = 4, server: str | None = None) -> list[tuple[str, str, lsp.Diagnostic]]:
        """(server, path, diagnostic) of every open document, errors first."""
        rows = []
        for connection in self.pool.connections(server):
            for uri, published in connection.diagnostics.items():
                relative = self._relative_uri(uri)
                if relative is None:
                    continue
                for diagnostic in published.items:
                    if int(diagnostic.severity or 1) <= threshold:
                        rows.append((connection.spec.name, relative, diagnostic))
        rows.sort(key=lambda row: (int(row[2].severity or 1), row[1], row[2].range.start.line))
        return rows

    def _severity_threshold(self, severity: str | None) -> int:
        if severity is None:
            return 4
        if severity not in SEVERITY_RANK:
            raise ToolInputError(f"severity '{severity}' is not one of error, warning, information, hint.")
        return SEVERITY_RANK[severity]

    @staticmethod
    def _severity_note(severity: str | None) -> str:
        return f" at severity {severity} or worse" if severity else ""

    # -- navigation -----------------------------------------------------------------------

    async def target(
        self, file_path: str, line: int | None, column: int | None, symbol: str | None, provider: str
    ) -> Target:
        """The position a tool call names: line + column, or a symbol (optionally on a given line)."""
        path = self._ws.resolve(file_path)
        relative = self._ws.relative(path)
        if not path.is_file():
            raise ToolInputError(f"'{relative}' is not a file; give a source file's path.")
        if line is None and symbol is None:
            raise ToolInputError("give `symbol` (a name in the file) or `line` and `column` (1-based).")
        synced = await self._sync_or_explain(path)
        connection = next((s.connection for s in synced if s.connection.supports(provider)), None)
        if connection is None:
            names = ", ".join(s.connection.spec.name for s in synced)
            raise ToolInputError(f"{names} cannot answer this for '{relative}' (it lacks {provider}).")
        text = self.pool.document_text(path) or path.read_text(encoding="utf-8", errors="replace")
        if symbol is None:
            assert line is not None
            position = position_from_user(text, line, column or _first_column(text, line))
        else:
            position = await self._find_symbol(connection, path, text, symbol, line)
        return Target(path, path.as_uri(), text, position, connection)

    async def _find_symbol(
        self, connection: ServerConnection, path: Path, text: str, symbol: str, line: int | None
    ) -> lsp.Position:
        relative = self._ws.relative(path)
        name = symbol.rsplit(".", 1)[-1]
        if line is None and connection.supports("document_symbol_provider"):
            found = await self.ask(
                connection,
                path.as_uri(),
                lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL,
                lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=path.as_uri())),
            )
            matches = [
                (".".join(path), position)
                for path, kind, position in _flatten_symbols(found or [], text)
                if symbol in (".".join(path), path[-1]) or ".".join(path).endswith("." + symbol)
            ]
            if len(matches) == 1:
                return _inside_name(text, matches[0][1], name)
            if len(matches) > 1:
                where = ", ".join(f"{q} at line {p.line + 1}" for q, p in matches[:8])
                raise ToolInputError(f"'{symbol}' names several symbols in '{relative}' ({where}); add `line`.")
        # Not declared here (or a line was given): the first use of the name as a whole word.
        pattern = re.compile(rf"(?<![\w$]){re.escape(name)}(?![\w$])")
        rows = text.split("\n")
        candidates = [line - 1] if line is not None else range(len(rows))
        for row in candidates:
            if 0 <= row < len(rows) and (match := pattern.search(rows[row])):
                return _inside_name(text, position_from_user(text, row + 1, match.start() + 1), name)
        where = f" on line {line}" if line is not None else ""
        raise ToolInputError(
            f"'{symbol}' was not found in '{relative}'{where}; check the name or give line and column."
        )

    async def request(self, connection: ServerConnection, method: str, params: Any) -> Any:
        if method in _ACROSS_FILES:
            await connection.wait_workspace_loaded(self._config.request_timeout_ms / 1000)
        try:
            return await connection.request(method, params, self._config.request_timeout_ms / 1000)
        except LspError as exc:
            raise ToolInputError(f"{str(exc).rstrip('.')}; it is restarted on the next call.") from None

    async def ask(self, connection: ServerConnection, uri: str, method: str, params: Any) -> Any:
        """A request about one document. An empty answer given before the server said anything of the document
        (its first diagnostics) is asked again once it has: a server may analyze what it was opened with only
        after its own start-up work (bash-language-server reads its configuration first), answering "nothing"
        until then. Waits at most `diagnostics_timeout_ms`, and only for servers that push diagnostics."""
        result = await self.request(connection, method, params)
        if result or connection.pulls_diagnostics or uri in connection.diagnostics:
            return result
        if await connection.wait_published(uri, 0, 0.0, self._config.diagnostics_timeout_ms / 1000) is None:
            return result
        return await self.request(connection, method, params)

    async def definition(self, target: Target) -> str:
        params = lsp.DefinitionParams(
            text_document=lsp.TextDocumentIdentifier(uri=target.uri), position=target.position
        )
        result = await self.ask(target.connection, target.uri, lsp.TEXT_DOCUMENT_DEFINITION, params)
        return self._render_locations(_locations(result), "definition") or "No definition found there."

    async def references(self, target: Target, include_declaration: bool) -> str:
        params = lsp.ReferenceParams(
            text_document=lsp.TextDocumentIdentifier(uri=target.uri),
            position=target.position,
            context=lsp.ReferenceContext(include_declaration=include_declaration),
        )
        result = await self.ask(target.connection, target.uri, lsp.TEXT_DOCUMENT_REFERENCES, params)
        return self._render_locations(_locations(result), "reference") or "No references found."

    async def hover(self, target: Target) -> str:
        params = lsp.HoverParams(text_document=lsp.TextDocumentIdentifier(uri=target.uri), position=target.position)
        result = await self.ask(target.connection, target.uri, lsp.TEXT_DOCUMENT_HOVER, params)
        text = _hover_text(result.contents) if result is not None else ""
        return text.strip() or "No hover information there."

    async def symbols(self, file_path: str | None, query: str | None) -> str:
        if file_path is not None:
            path = self._ws.resolve(file_path)
            if not path.is_file():
                raise ToolInputError(f"'{self._ws.relative(path)}' is not a file; give a source file's path.")
            synced = await self._sync_or_explain(path)
            connection = next((s.connection for s in synced if s.connection.supports("document_symbol_provider")), None)
            if connection is None:
                names = ", ".join(s.connection.spec.name for s in synced)
                relative = self._ws.relative(path)
                lacks = "it lacks document_symbol_provider"
                raise ToolInputError(f"{names} cannot list the symbols of '{relative}' ({lacks}).")
            found = await self.ask(
                connection,
                path.as_uri(),
                lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL,
                lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=path.as_uri())),
            )
            text = self.pool.document_text(path) or ""
            rows = [
                f"{'  ' * (len(path) - 1)}{path[-1]} ({kind}) line {position.line + 1}"
                for path, kind, position in _flatten_symbols(found or [], text)
            ]
            return "\n".join(rows[: MAX_RESULTS * 2]) or f"No symbols in '{self._ws.relative(path)}'."
        if not query:
            raise ToolInputError("give file_path for a file's outline, or query to search the workspace.")
        connections = [c for c in self.pool.connections() if c.supports("workspace_symbol_provider")]
        if not connections:
            raise ToolInputError(
                "no running language server searches workspace symbols; open a file first (any lsp tool or file_read)."
            )
        rows = []
        for connection in connections:
            found = await self.request(connection, lsp.WORKSPACE_SYMBOL, lsp.WorkspaceSymbolParams(query=query))
            for item in found or []:
                location = item.location
                relative = self._relative_uri(location.uri)
                if relative is None or not hasattr(location, "range"):
                    continue
                kind = lsp.SymbolKind(item.kind).name.lower()
                rows.append(f"{item.name} ({kind}) {relative}:{location.range.start.line + 1}")
        return "\n".join(rows[:MAX_RESULTS]) or f"No workspace symbols match '{query}'."

    async def document_symbols(self, path: Path) -> tuple[list[Any], str, str] | None:
        """(documentSymbol answer, the text the server was given, its name) for `path`; None when no server
        for it lists symbols."""
        synced = await self._sync_or_explain(path)
        connection = next((s.connection for s in synced if s.connection.supports("document_symbol_provider")), None)
        if connection is None:
            return None
        text = self.pool.document_text(path)
        found = await self.ask(
            connection,
            path.as_uri(),
            lsp.TEXT_DOCUMENT_DOCUMENT_SYMBOL,
            lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=path.as_uri())),
        )
        return (found or [], text, connection.spec.name) if text is not None else None

    async def reference_locations(self, path: Path, text: str, offset: int) -> list[tuple[Path, int]] | None:
        """Where the symbol whose name is at `offset` of `path` is used, as (file, 0-based line) inside the project,
        without its declaration; None when no server for it finds references."""
        synced = await self._sync_or_explain(path)
        connection = next((s.connection for s in synced if s.connection.supports("references_provider")), None)
        if connection is None:
            return None
        params = lsp.ReferenceParams(
            text_document=lsp.TextDocumentIdentifier(uri=path.as_uri()),
            position=position_of(text, offset),
            context=lsp.ReferenceContext(include_declaration=False),
        )
        found = []
        for location in _locations(await self.ask(connection, path.as_uri(), lsp.TEXT_DOCUMENT_REFERENCES, params)):
            relative = self._relative_uri(location.uri)
            if relative is not None:
                found.append((self._ws.root / relative, location.range.start.line))
        return found

    async def rename_edits(self, target: Target, new_name: str) -> dict[Path, str]:
        """The new text of every file the rename touches, checked against the write rules."""
        if not new_name.strip():
            raise ToolInputError("new_name is empty; give the new identifier.")
        params = lsp.RenameParams(
            text_document=lsp.TextDocumentIdentifier(uri=target.uri), position=target.position, new_name=new_name
        )
        edit = await self.request(target.connection, lsp.TEXT_DOCUMENT_RENAME, params)
        if edit is None:
            raise ToolInputError("the language server found nothing to rename there; point at the symbol itself.")
        per_uri: dict[str, list[lsp.TextEdit]] = {}
        for uri, edits in (edit.changes or {}).items():
            per_uri.setdefault(uri, []).extend(edits)
        for change in edit.document_changes or []:
            if not isinstance(change, lsp.TextDocumentEdit):
                raise ToolInputError(
                    "this rename would also create, rename or delete files, which lsp_rename does not do; "
                    "do those steps yourself."
                )
            per_uri.setdefault(change.text_document.uri, []).extend(
                e for e in change.edits if isinstance(e, lsp.TextEdit)
            )
        updated: dict[Path, str] = {}
        for uri, edits in per_uri.items():
            raw = to_fs_path(uri)
            if raw is None:
                raise ToolInputError(f"the rename touches {uri}, which is not a file; nothing was changed.")
            try:
                path = self._ws.resolve_for_write(raw)
            except PathRefused as exc:
                raise ToolInputError(f"nothing was renamed: {exc}") from None
            current = path.read_text(encoding="utf-8")
            updated[path] = apply_edits(current, edits)
        return updated

    # -- helpers --------------------------------------------------------------------------

    async def _sync_or_explain(self, path: Path, server: str | None = None) -> list[Synced]:
        relative = self._ws.relative(path)
        if not self.pool.handles(path):
            raise ToolInputError(f"no language server is configured for '{relative}'; see `loomkin-mcp lsp-status`.")
        if path.stat().st_size > MAX_SYNC_BYTES:
            raise ToolInputError(
                f"'{relative}' is over {MAX_SYNC_BYTES} bytes, too large to send to a language server."
            )
        try:
            synced = await self.pool.sync(path, server)
        except LspError as exc:
            raise ToolInputError(f"{str(exc).rstrip('.')}.") from None
        if not synced:
            raise ToolInputError(f"no language server named '{server}' handles '{relative}'.")
        return synced

    def _relative_uri(self, uri: str) -> str | None:
        raw = to_fs_path(uri)
        if raw is None:
            return None
        path = Path(raw)
        return self._ws.relative(path) if path.is_relative_to(self._ws.root) else None

    def _render_locations(self, locations: list[lsp.Location], noun: str) -> str:
        rows = []
        outside = 0
        for location in locations[:MAX_RESULTS]:
            relative = self._relative_uri(location.uri)
            start = location.range.start
            if relative is None:
                outside += 1
                raw = to_fs_path(location.uri) or location.uri
                rows.append(f"{raw}:{start.line + 1}:{start.character + 1} (outside the project)")
                continue
            path = self._ws.root / relative
            text = self.pool.document_text(path)
            if text is None:
                try:
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    text = ""
            source = text.split("\n")[start.line].strip() if start.line < text.count("\n") + 1 else ""
            rows.append(f"{relative}:{start.line + 1}:{user_column(text, start)}  {source[:160]}")
        if not rows:
            return ""
        more = f"\n… {len(locations) - MAX_RESULTS} more." if len(locations) > MAX_RESULTS else ""
        return f"{len(locations)} {noun}(s):\n" + "\n".join(rows) + more

    @staticmethod
    async def _quietly(awaitable: Any) -> Any:
        try:
            return await awaitable
        except LspError as exc:
            logger.info("%s", exc)
            return None


# Requests whose answer covers files the server may not have read yet.
_ACROSS_FILES = frozenset({lsp.TEXT_DOCUMENT_REFERENCES, lsp.TEXT_DOCUMENT_RENAME, lsp.WORKSPACE_SYMBOL})


def _small_enough(path: Path) -> bool:
    try:
        return path.stat().st_size <= MAX_SYNC_BYTES
    except OSError:
        return False


def _identity(diagnostic: lsp.Diagnostic) -> tuple[Any, ...]:
    """What makes two diagnostics "the same problem" across an edit: not their position."""
    code = diagnostic.code if not isinstance(diagnostic.code, dict) else str(diagnostic.code)
    return (int(diagnostic.severity or 1), " ".join(diagnostic.message.split()), diagnostic.source, code)


def _sorted(diagnostics: list[lsp.Diagnostic]) -> list[lsp.Diagnostic]:
    return sorted(diagnostics, key=lambda d: (int(d.severity or 1), d.range.start.line, d.range.start.character))


def _inside_name(text: str, position: lsp.Position, name: str) -> lsp.Position:
    """The position one character into `name` when it starts there: on a name's first character some servers
    find the node before it (yaml-language-server answers no hover on a key's first letter)."""
    offset = offset_of(text, position)
    if len(name) > 1 and text.startswith(name, offset):
        return position_of(text, offset + 1)
    return position


def _first_column(text: str, line: int) -> int:
    rows = text.split("\n")
    if not 1 <= line <= len(rows):
        return 1
    row = rows[line - 1]
    return len(row) - len(row.lstrip()) + 1


def _locations(result: Any) -> list[lsp.Location]:
    if result is None:
        return []
    items = result if isinstance(result, list) else [result]
    locations = []
    for item in items:
        if isinstance(item, lsp.Location):
            locations.append(item)
        elif isinstance(item, lsp.LocationLink):
            locations.append(lsp.Location(uri=item.target_uri, range=item.target_selection_range))
    return locations


def _hover_text(contents: Any) -> str:
    if isinstance(contents, lsp.MarkupContent):
        return contents.value
    if isinstance(contents, lsp.MarkedStringWithLanguage):
        return f"```{contents.language}\n{contents.value}\n```"
    if isinstance(contents, list):
        return "\n\n".join(_hover_text(item) for item in contents)
    return str(contents or "")


def _flatten_symbols(
    symbols: list[Any], text: str, parents: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str, lsp.Position]]:
    """(name path, kind, position of the name) for DocumentSymbol trees or SymbolInformation lists. A path, not a
    dotted string: names may hold dots themselves (CSS's `.title`, YAML's `a.b` keys)."""
    rows = []
    for symbol in symbols:
        path = (*parents, symbol.name)
        kind = lsp.SymbolKind(symbol.kind).name.lower()
        if isinstance(symbol, lsp.DocumentSymbol):
            rows.append((path, kind, symbol.selection_range.start))
            rows.extend(_flatten_symbols(symbol.children or [], text, path))
        else:
            start = symbol.location.range.start
            # SymbolInformation points at the whole declaration: move to the name itself.
            line_text = text.split("\n")[start.line] if start.line < text.count("\n") + 1 else ""
            found = line_text.find(symbol.name, start.character)
            container = (symbol.container_name,) if getattr(symbol, "container_name", None) else ()
            position = start if found < 0 else lsp.Position(line=start.line, character=found)
            rows.append(((*container, symbol.name), kind, position))
    return rows
