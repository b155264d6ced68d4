"""All configured language servers: started lazily, restarted with backoff, documents kept in sync."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types as lsp

from ._connection import ServerConnection
from ._errors import LspError
from ._spec import Launcher, ServerSpec
from ._text import incremental_change

logger = logging.getLogger("loomkin_lsp_client")

# A server that let this many requests in a row go unanswered is taken for hung and restarted.
HUNG_AFTER_TIMEOUTS = 2


@dataclass
class Document:
    uri: str
    language_id: str
    text: str
    version: int
    stamp: tuple[int, int]
    """(mtime_ns, size) of the file when its text was last sent."""


@dataclass
class Synced:
    """A document sent to one server: the version to wait diagnostics for."""

    connection: ServerConnection
    uri: str
    version: int
    sent_at: float
    baseline: list[lsp.Diagnostic] | None
    """The diagnostics of the version before this one, when the server had published them."""
    settled: bool = True
    """The previous version's diagnostics were in and final when this version was sent, so what the server
    publishes next is this version's."""


@dataclass
class _Slot:
    spec: ServerSpec
    connection: ServerConnection | None = None
    starting: ServerConnection | None = None
    """The connection whose start is under way (not yet `connection`): shutdown stops it too."""
    state: str = "not started"
    last_error: str | None = None
    failures: deque[float] = field(default_factory=deque)
    retry_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    documents: OrderedDict[str, Document] = field(default_factory=OrderedDict)
    starts: int = 0
    started_at: float | None = None
    """When (Unix time) the running connection finished starting."""


@dataclass(frozen=True)
class ServerStatus:
    name: str
    command: str
    languages: tuple[str, ...]
    state: str
    pid: int | None
    open_documents: int
    last_error: str | None
    restarts: int = 0
    uptime_s: float | None = None


class LanguageServerPool:
    def __init__(
        self,
        specs: list[ServerSpec],
        root: Path,
        *,
        start_timeout: float = 20.0,
        max_open_documents: int = 50,
        max_restarts_per_minute: int = 5,
        on_diagnostics: Callable[[str], None] | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.root = root
        self._launcher = launcher
        self.start_timeout = start_timeout
        self.max_open_documents = max_open_documents
        self.max_restarts_per_minute = max_restarts_per_minute
        self._on_diagnostics = on_diagnostics
        self._slots = [_Slot(spec) for spec in specs]
        self._closed = False

    @property
    def specs(self) -> list[ServerSpec]:
        return [slot.spec for slot in self._slots]

    def handles(self, path: Path) -> bool:
        return any(slot.spec.handles(path) for slot in self._slots)

    def connections(self, server: str | None = None) -> list[ServerConnection]:
        """Running connections (optionally only the one named `server`)."""
        return [
            slot.connection
            for slot in self._slots
            if slot.connection is not None and slot.connection.alive and server in (None, slot.spec.name)
        ]

    # -- servers --------------------------------------------------------------------------

    async def ready_for(self, path: Path, server: str | None = None) -> list[ServerConnection]:
        """Running connections for `path`, starting (or restarting) them as needed."""
        slots = [s for s in self._slots if s.spec.handles(path) and server in (None, s.spec.name)]
        if not slots:
            return []
        results = await asyncio.gather(*(self._ready(slot) for slot in slots), return_exceptions=True)
        connections = [r for r in results if isinstance(r, ServerConnection)]
        if not connections:
            error = next(r for r in results if isinstance(r, BaseException))
            raise error if isinstance(error, LspError) else LspError(str(error))
        return connections

    async def _ready(self, slot: _Slot) -> ServerConnection:
        async with slot.lock:
            if self._closed:
                raise LspError("the language servers are stopping with their project; call again to start them anew.")
            connection = slot.connection
            if connection is not None and connection.alive and connection.timeouts_in_a_row < HUNG_AFTER_TIMEOUTS:
                return connection
            if connection is not None:
                reason = (
                    connection.describe_exit()
                    if not connection.alive
                    else f"{slot.spec.name} stopped answering ({connection.timeouts_in_a_row} requests timed out)"
                )
                self._record_failure(slot, reason)
                await connection.stop(grace=0.5)
                slot.connection = None
            wait = slot.retry_at - time.monotonic()
            if wait > 0:
                if wait > 5:
                    raise LspError(f"{slot.last_error}; it is retried in {wait:.0f} s (see `loomkin-mcp lsp-status`).")
                await asyncio.sleep(wait)
            return await self._start(slot)

    async def _start(self, slot: _Slot) -> ServerConnection:
        spec = slot.spec
        slot.state = "starting"
        connection = ServerConnection(spec, self.root, on_diagnostics=self._on_diagnostics, launcher=self._launcher)
        slot.starting = connection
        try:
            await connection.start(self.start_timeout)
        except LspError as exc:
            await connection.stop(grace=0.5)
            message = str(exc)
            if "did not answer initialize" in message:
                message = f"{spec.name} did not finish starting within {self.start_timeout:.0f} s"
            self._record_failure(slot, message)
            raise LspError(message) from None
        except BaseException:
            # Cancelled while starting (its project closed, its caller left): the process must not outlive that.
            await asyncio.shield(connection.stop(grace=0.5))
            raise
        finally:
            slot.starting = None
        slot.connection = connection
        slot.state = "running"
        slot.starts += 1
        slot.started_at = time.time()
        logger.info("started %s (pid %s) for %s", spec.name, connection.pid, ", ".join(sorted(spec.languages)))
        for document in slot.documents.values():
            document.version += 1
            self._open(connection, document)
        return connection

    def _record_failure(self, slot: _Slot, message: str) -> None:
        now = time.monotonic()
        slot.failures.append(now)
        while slot.failures and slot.failures[0] < now - 60:
            slot.failures.popleft()
        count = len(slot.failures)
        slot.last_error = message
        slot.state = "failed"
        if count >= self.max_restarts_per_minute:
            slot.retry_at = slot.failures[0] + 60
            slot.last_error = f"{message} ({count} failures in the last minute)"
        else:
            slot.retry_at = now + min(0.25 * 2 ** (count - 1), 4.0)
        logger.warning("%s", slot.last_error)

    async def shutdown(self) -> None:
        """Stop every server, those still starting too: `shutdown` + `exit`, then kill what lingers. No child
        survives, and none starts after."""
        self._closed = True
        stopping = [connection for slot in self._slots for connection in (slot.connection, slot.starting) if connection]
        await asyncio.gather(*(connection.stop() for connection in stopping), return_exceptions=True)
        for slot in self._slots:
            slot.connection = None
            slot.state = "stopped"

    def status(self) -> list[ServerStatus]:
        return [self._status(slot) for slot in self._slots]

    @staticmethod
    def _status(slot: _Slot) -> ServerStatus:
        alive = slot.connection is not None and slot.connection.alive
        return ServerStatus(
            name=slot.spec.name,
            command=" ".join([slot.spec.command, *slot.spec.args]),
            languages=tuple(sorted(slot.spec.languages | slot.spec.extensions)),
            state=slot.state if slot.connection is None or alive else "crashed",
            pid=slot.connection.pid if alive and slot.connection is not None else None,
            open_documents=len(slot.documents),
            last_error=slot.last_error,
            restarts=max(slot.starts - 1, 0),
            uptime_s=round(time.time() - slot.started_at, 1) if alive and slot.started_at else None,
        )

    def files_changed(self, changes: list[tuple[Path, lsp.FileChangeType]]) -> None:
        """Tell the servers that watch files what changed on disk (they may not have it open)."""
        events = [lsp.FileEvent(uri=path.as_uri(), type=kind) for path, kind in changes]
        for connection in self.connections():
            if connection.watches_files and events:
                with contextlib.suppress(LspError):
                    connection.notify(
                        lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES, lsp.DidChangeWatchedFilesParams(changes=events)
                    )

    # -- documents ------------------------------------------------------------------------

    async def sync(self, path: Path, server: str | None = None) -> list[Synced]:
        """Send the file's current text to every server for it; didOpen, or didChange + didSave."""
        connections = await self.ready_for(path, server)
        text, stamp = _read(path)
        uri = path.as_uri()
        synced = []
        for connection in connections:
            slot = next(s for s in self._slots if s.connection is connection)
            document = slot.documents.get(uri)
            sent_at = time.monotonic()
            if document is None:
                document = Document(uri, connection.spec.language_id(path), text, 1, stamp)
                self._remember(slot, document)
                self._open(connection, document)
                synced.append(Synced(connection, uri, document.version, sent_at, baseline=None))
                continue
            slot.documents.move_to_end(uri)
            if document.text == text and document.stamp == stamp:
                synced.append(Synced(connection, uri, document.version, sent_at, self._known(connection, document)))
                continue
            baseline = self._known(connection, document)
            settled = connection.settled(uri)
            self._change(connection, document, text, stamp)
            synced.append(Synced(connection, uri, document.version, sent_at, baseline, settled))
        return synced

    def document_text(self, path: Path) -> str | None:
        uri = path.as_uri()
        for slot in self._slots:
            if uri in slot.documents:
                return slot.documents[uri].text
        return None

    @staticmethod
    def _known(connection: ServerConnection, document: Document) -> list[lsp.Diagnostic] | None:
        return connection.known(document.uri, document.version)

    def _remember(self, slot: _Slot, document: Document) -> None:
        slot.documents[document.uri] = document
        while len(slot.documents) > self.max_open_documents:
            uri, _ = slot.documents.popitem(last=False)
            if slot.connection is not None and slot.connection.alive:
                with contextlib.suppress(LspError):
                    slot.connection.notify(
                        lsp.TEXT_DOCUMENT_DID_CLOSE,
                        lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri)),
                    )
                slot.connection.forget(uri)

    @staticmethod
    def _open(connection: ServerConnection, document: Document) -> None:
        connection.notify(
            lsp.TEXT_DOCUMENT_DID_OPEN,
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(
                    uri=document.uri, language_id=document.language_id, version=document.version, text=document.text
                )
            ),
        )

    @staticmethod
    def _change(connection: ServerConnection, document: Document, text: str, stamp: tuple[int, int]) -> None:
        if connection.sync_kind == lsp.TextDocumentSyncKind.Incremental:
            change: lsp.TextDocumentContentChangeEvent = incremental_change(document.text, text)
        else:
            change = lsp.TextDocumentContentChangeWholeDocument(text=text)
        document.version += 1
        document.text = text
        document.stamp = stamp
        connection.notify(
            lsp.TEXT_DOCUMENT_DID_CHANGE,
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=document.uri, version=document.version),
                content_changes=[change],
            ),
        )
        # Some servers (elixir-ls) only compile on save: the file is on disk, so say so.
        connection.notify(
            lsp.TEXT_DOCUMENT_DID_SAVE,
            lsp.DidSaveTextDocumentParams(
                text_document=lsp.TextDocumentIdentifier(uri=document.uri),
                text=text if connection.save_includes_text else None,
            ),
        )


def _read(path: Path) -> tuple[str, tuple[int, int]]:
    info = os.stat(path)
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", errors="replace")
    return text, (info.st_mtime_ns, info.st_size)
