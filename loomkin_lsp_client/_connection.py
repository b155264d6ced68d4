"""One running language server: its process, the pygls client, and what it has told us."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.lsp.client import LanguageClient

from ._errors import LspError, ServerCrashed, ServerTimeout
from ._languages import find_executable, program_missing
from ._process import die_with_parent
from ._spec import Launcher, ServerSpec

logger = logging.getLogger("loomkin_lsp_client")

_STDERR_TAIL_LINES = 20
# How long a server that does not version its diagnostics must be quiet about a document before its last
# publish is taken as final (typescript-language-server publishes each stage 50 ms after it is computed) —
# and longer when the previous version's were still coming as the edit was sent: then the first publishes
# after it are the previous version's, and the server may wait before it checks the new text
# (typescript-language-server waits 300-800 ms).
QUIET_AFTER_UNVERSIONED = 0.3
QUIET_WHILE_UNSETTLED = 1.2


@dataclass
class Published:
    """The diagnostics a server last published (or answered to a pull) for one document."""

    version: int | None
    items: list[lsp.Diagnostic]
    received_at: float = field(default_factory=time.monotonic)


class _Client(LanguageClient):
    """pygls' client, telling its owner when the server process exits."""

    def __init__(self, on_exit: Callable[[int | None], None]) -> None:
        super().__init__("loomkin-mcp", "1")
        self._on_exit = on_exit

    async def server_exit(self, server: asyncio.subprocess.Process) -> None:
        self._on_exit(server.returncode)


class ServerConnection:
    """Spawn, initialize, talk to and stop one language server process."""

    def __init__(
        self,
        spec: ServerSpec,
        root: Path,
        on_diagnostics: Callable[[str], None] | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.spec = spec
        self._launcher = launcher
        self._wrapped = False
        self.root = root
        self.capabilities: lsp.ServerCapabilities | None = None
        self.server_info: lsp.ServerInfo | None = None
        self.ready_at: float | None = None
        """When (time.monotonic) the initialize handshake completed."""
        self.diagnostics: dict[str, Published] = {}
        self.returncode: int | None = None
        self.timeouts_in_a_row = 0
        """Requests that went unanswered since the last answer: a stopped (hung) server piles them up."""
        self.exited = asyncio.Event()
        self.stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._on_diagnostics = on_diagnostics
        self._published = asyncio.Condition()
        self._progress: set[str | int] = set()
        self._progress_done = asyncio.Event()
        self._progress_done.set()
        self._pull_registered = False
        self._pulled: dict[str, Published] = {}
        """The answer to the last pull of each document, apart from what the server publishes meanwhile."""
        self._versioned: set[str] = set()
        """Documents the server has published versioned diagnostics for."""
        self._result_ids: dict[str, str] = {}
        """The last `resultId` of each document's pulled diagnostics, sent back so a server can say "unchanged"."""
        self.workspace_loaded = asyncio.Event()
        """The server has read the workspace's files (at once, for servers that do not say when)."""
        if not spec.loaded_log:
            self.workspace_loaded.set()
        self.watches_files = False
        """The server registered for workspace/didChangeWatchedFiles."""
        self._client = _Client(self._exited)
        self._stderr_task: asyncio.Task[None] | None = None
        self._register_handlers()

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        # pygls keeps the process private; we need its pid to stop its process group.
        process = self._client._server
        return process.pid if process is not None else None

    @property
    def alive(self) -> bool:
        return self.pid is not None and not self.exited.is_set()

    async def start(self, timeout: float) -> None:
        """Spawn the server and complete the initialize handshake within `timeout` seconds."""
        missing = self.spec.missing_program()
        if missing is not None:
            # Said here: inside a sandbox a missing program would be the sandbox's own error instead.
            raise LspError(missing)
        argv = [find_executable(self.spec.command) or self.spec.command, *self.spec.args]
        argv, env, fds, launch = argv, os.environ | dict(self.spec.env), (), None
        if self._launcher is not None:
            launch = self._launcher(self.spec, argv)
            argv, env, fds, self._wrapped = launch.argv, launch.env, launch.pass_fds, launch.wrapped
        try:
            await self._client.start_io(
                argv[0],
                *argv[1:],
                cwd=str(self.root),
                env=env,
                pass_fds=fds,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            if program_missing(argv[0], exc):
                missing = self.spec.missing_program() or f"{self.spec.name}: `{self.spec.command}` was not found."
                raise LspError(missing) from None
            if isinstance(exc, PermissionError):
                raise LspError(
                    f"{self.spec.name}: `{self.spec.command}` is not executable; check its permissions."
                ) from None
            raise
        finally:
            if launch is not None:
                launch.close()
        process = self._client._server
        if process is not None and process.stderr is not None:
            # pygls pipes stderr and never reads it: a chatty server would block once the pipe fills.
            self._stderr_task = asyncio.create_task(self._drain_stderr(process.stderr))
        result = await self.request("initialize", self._initialize_params(), timeout)
        self.capabilities = result.capabilities
        self.server_info = result.server_info
        self._client.initialized(lsp.InitializedParams())
        self.ready_at = time.monotonic()
        # Always, as VS Code does: pyright waits for it (settings or none) before it answers anything.
        self._client.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(settings=dict(self.spec.settings))
        )

    async def stop(self, grace: float = 2.0) -> None:
        """`shutdown` + `exit`, then SIGTERM and SIGKILL of the whole process group if it lingers."""
        if self.alive:
            with contextlib.suppress(LspError):
                await self.request("shutdown", None, grace)
                self._client.exit(None)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.exited.wait(), grace)
        self._kill_group(signal.SIGTERM)
        if not self.exited.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.exited.wait(), grace)
        self._kill_group(signal.SIGKILL)
        if self._stderr_task is not None:
            self._stderr_task.cancel()
        with contextlib.suppress(asyncio.TimeoutError, Exception):
            await asyncio.wait_for(self._client.stop(), grace)

    def _kill_group(self, sig: signal.Signals) -> None:
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    def _exited(self, returncode: int | None) -> None:
        if self._wrapped and returncode is not None and 128 < returncode <= 128 + 64:
            returncode = 128 - returncode  # the server itself was killed by that signal
        self.returncode = returncode
        self.exited.set()
        self._progress_done.set()
        logger.info("%s exited with code %s", self.spec.name, returncode)

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode("utf-8", errors="replace").rstrip()
            if text:
                self.stderr_tail.append(text)

    async def _crashed(self) -> ServerCrashed:
        """The error for a dead server, once its last stderr lines are in."""
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._stderr_task), 0.5)
        return ServerCrashed(self.describe_exit())

    def describe_exit(self) -> str:
        code = self.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        tail = " | ".join(list(self.stderr_tail)[-3:])
        return f"{self.spec.name} {how}" + (f"; its last stderr: {tail[:400]}" if tail else "")

    # -- requests -------------------------------------------------------------------------

    async def request(self, method: str, params: Any, timeout: float) -> Any:
        """Send a request and wait at most `timeout` seconds; a dead server fails at once."""
        if self.exited.is_set():
            raise await self._crashed()
        protocol = self._client.protocol
        msg_id = str(uuid.uuid4())
        future = asyncio.wrap_future(protocol.send_request(method, params, msg_id=msg_id))
        exited = asyncio.ensure_future(self.exited.wait())
        try:
            done, _ = await asyncio.wait({future, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if future in done:
            self.timeouts_in_a_row = 0
            try:
                return future.result()
            except JsonRpcException as exc:
                raise LspError(f"{self.spec.name} answered {method} with an error: {exc}") from None
            except Exception:
                # pygls fails pending requests with a RuntimeError when the process exits.
                if self.pid is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.exited.wait(), 1.0)
                if self.exited.is_set():
                    raise await self._crashed() from None
                raise
        # Forget the request so a late answer is dropped, and tell the server to stop working on it.
        protocol._request_futures.pop(msg_id, None)
        future.cancel()
        if self.exited.is_set():
            raise await self._crashed()
        with contextlib.suppress(Exception):
            protocol.notify("$/cancelRequest", lsp.CancelParams(id=msg_id))
        self.timeouts_in_a_row += 1
        raise ServerTimeout(f"{self.spec.name} did not answer {method} within {timeout * 1000:.0f} ms")

    def notify(self, method: str, params: Any) -> None:
        if self.exited.is_set():
            raise ServerCrashed(self.describe_exit())
        self._client.protocol.notify(method, params)

    # -- capabilities ---------------------------------------------------------------------

    @property
    def sync_kind(self) -> lsp.TextDocumentSyncKind:
        sync = self.capabilities.text_document_sync if self.capabilities else None
        if isinstance(sync, lsp.TextDocumentSyncKind):
            return sync
        if isinstance(sync, lsp.TextDocumentSyncOptions) and sync.change is not None:
            return sync.change
        return lsp.TextDocumentSyncKind.Full

    @property
    def save_includes_text(self) -> bool:
        sync = self.capabilities.text_document_sync if self.capabilities else None
        save = sync.save if isinstance(sync, lsp.TextDocumentSyncOptions) else None
        return isinstance(save, lsp.SaveOptions) and bool(save.include_text)

    @property
    def pulls_diagnostics(self) -> bool:
        """Diagnostics are asked for: `textDocument/diagnostic`, or typescript-language-server's tsserver."""
        return self._pulls_lsp or self._pulls_tsserver

    @property
    def _pulls_lsp(self) -> bool:
        return self._pull_registered or (
            self.capabilities is not None and self.capabilities.diagnostic_provider is not None
        )

    @property
    def _pulls_tsserver(self) -> bool:
        # typescript-language-server publishes without a version, in stages, and nothing when a list stays empty;
        # its `typescript.tsserverRequest` command asks tsserver for a file's diagnostics of the text it has now.
        commands = self.capabilities.execute_command_provider if self.capabilities else None
        return commands is not None and TSSERVER_REQUEST in commands.commands

    def supports(self, provider: str) -> bool:
        return self.capabilities is not None and bool(getattr(self.capabilities, provider, None))

    # -- diagnostics ----------------------------------------------------------------------

    def settled(self, uri: str) -> bool:
        """What the server said of the document is in and final (versioned, or followed by quiet)."""
        got = self.diagnostics.get(uri)
        if got is None:
            return False
        return uri in self._versioned or time.monotonic() - got.received_at >= QUIET_AFTER_UNVERSIONED

    async def wait_published(
        self, uri: str, version: int, since: float, timeout: float, settled: bool = True
    ) -> Published | None:
        """The first publish for `version`. From a server that does not say which version its publish is for,
        the last one received after `since`, once the server has published nothing more for the document for
        a while (or until the deadline): such servers publish in stages (typescript-language-server: syntax,
        then semantic errors), and a late publish for the previous version (gopls' first, on opening) would
        otherwise pass for this one's — the while is longer when the previous version was not `settled` as this
        one was sent. A server that has versioned a publish for the document is waited for by version only."""
        quiet = QUIET_AFTER_UNVERSIONED if settled else QUIET_WHILE_UNSETTLED
        deadline = time.monotonic() + timeout
        pulling = self.pulls_diagnostics
        async with self._published:
            while True:
                if self.pulls_diagnostics and not pulling:
                    return None  # it registered pull diagnostics meanwhile (pyright does so after opening): ask
                now = time.monotonic()
                wait = deadline - now
                got = self.diagnostics.get(uri)
                if got is not None and got.version is not None and got.version >= version:
                    return got
                settling = got is not None and got.version is None and got.received_at >= since
                settling = settling and uri not in self._versioned
                if settling:
                    assert got is not None
                    quiet_for = now - got.received_at
                    if quiet_for >= quiet or wait <= 0:
                        return got
                    wait = min(wait, quiet - quiet_for)
                if wait <= 0 or self.exited.is_set():
                    return None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._published.wait(), wait)

    def known(self, uri: str, version: int) -> list[lsp.Diagnostic] | None:
        """What the server said of `version` of the document, when that is known: a pulled answer for exactly
        that version, else its last publish (unversioned, or of that version)."""
        pulled = self._pulled.get(uri)
        if pulled is not None and pulled.version == version:
            return pulled.items
        published = self.diagnostics.get(uri)
        if published is None or (published.version is not None and published.version != version):
            return None
        return published.items

    async def pull_diagnostics(self, uri: str, version: int, timeout: float) -> list[lsp.Diagnostic]:
        """Ask for `uri`'s diagnostics and keep the answer as `version`'s, as a publish is kept: the next edit
        compares with it."""
        if self._pulls_lsp:
            items = await self._pull_lsp(uri, timeout)
        else:
            items = await self._pull_tsserver(uri, timeout)
        self._pulled[uri] = Published(version, items)
        await self._store(uri, Published(version, items))
        return items

    async def _pull_tsserver(self, uri: str, timeout: float) -> list[lsp.Diagnostic]:
        """The three kinds of diagnostics tsserver computes, each asked for at once (`*DiagnosticsSync`)."""
        deadline = time.monotonic() + timeout
        items: list[lsp.Diagnostic] = []
        for kind in ("syntacticDiagnosticsSync", "semanticDiagnosticsSync", "suggestionDiagnosticsSync"):
            params = lsp.ExecuteCommandParams(command=TSSERVER_REQUEST, arguments=[kind, {"file": uri}])
            answer = await self.request(lsp.WORKSPACE_EXECUTE_COMMAND, params, max(deadline - time.monotonic(), 0.05))
            body = answer.get("body") if isinstance(answer, dict) else None
            if not isinstance(body, list):
                raise LspError(f"{self.spec.name} gave no {kind} answer")
            found = (_from_tsserver(entry) for entry in body if isinstance(entry, dict))
            items.extend(diagnostic for diagnostic in found if diagnostic is not None)
        return items

    async def _pull_lsp(self, uri: str, timeout: float) -> list[lsp.Diagnostic]:
        """`textDocument/diagnostic`, sending the last `resultId`: "unchanged" means what was kept still holds."""
        params = lsp.DocumentDiagnosticParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri), previous_result_id=self._result_ids.get(uri)
        )
        report = await self.request(lsp.TEXT_DOCUMENT_DIAGNOSTIC, params, timeout)
        kept = self._pulled.get(uri)
        if getattr(report, "kind", None) == "unchanged" and kept is not None:
            items = kept.items
        else:
            items = list(getattr(report, "items", None) or [])
        result_id = getattr(report, "result_id", None)
        if result_id:
            self._result_ids[uri] = result_id
        return items

    def forget(self, uri: str) -> None:
        """The document was closed: what the server said of it no longer holds."""
        self.diagnostics.pop(uri, None)
        self._pulled.pop(uri, None)
        self._result_ids.pop(uri, None)
        self._versioned.discard(uri)

    async def wait_workspace_loaded(self, timeout: float) -> bool:
        """Wait until the server has read the workspace's files; False when it has not within `timeout`."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.workspace_loaded.wait(), timeout)
        return self.workspace_loaded.is_set()

    async def wait_until_idle(self, timeout: float) -> bool:
        """Wait for work-done progress (indexing) to end; True when nothing is in progress."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._progress_done.wait(), timeout)
        return self._progress_done.is_set()

    @property
    def busy(self) -> bool:
        return not self._progress_done.is_set()

    async def _store(self, uri: str, published: Published) -> None:
        async with self._published:
            self.diagnostics[uri] = published
            self._published.notify_all()
        if self._on_diagnostics is not None:
            self._on_diagnostics(uri)

    # -- what the server sends us ---------------------------------------------------------

    def _register_handlers(self) -> None:
        client = self._client

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
            if params.version is not None:
                self._versioned.add(params.uri)
            await self._store(params.uri, Published(params.version, list(params.diagnostics)))

        @client.feature(lsp.WORKSPACE_CONFIGURATION)
        def on_configuration(params: lsp.ConfigurationParams) -> list[Any]:
            return [self.spec.setting(item.section) for item in params.items]

        @client.feature(lsp.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def on_progress_create(params: lsp.WorkDoneProgressCreateParams) -> None:
            return None

        @client.feature(lsp.PROGRESS)
        def on_progress(params: lsp.ProgressParams) -> None:
            kind = params.value.get("kind") if isinstance(params.value, dict) else getattr(params.value, "kind", None)
            if kind == "begin":
                self._progress.add(params.token)
                self._progress_done.clear()
            elif kind == "end":
                self._progress.discard(params.token)
                if not self._progress:
                    self._progress_done.set()

        @client.feature(lsp.CLIENT_REGISTER_CAPABILITY)
        async def on_register(params: lsp.RegistrationParams) -> None:
            methods = {registration.method for registration in params.registrations}
            self.watches_files |= lsp.WORKSPACE_DID_CHANGE_WATCHED_FILES in methods
            if lsp.TEXT_DOCUMENT_DIAGNOSTIC in methods and not self._pull_registered:
                self._pull_registered = True
                async with self._published:
                    self._published.notify_all()  # a wait for a publish now asks instead

        @client.feature(lsp.CLIENT_UNREGISTER_CAPABILITY)
        def on_unregister(params: lsp.UnregistrationParams) -> None:
            return None

        @client.feature(lsp.WORKSPACE_WORKSPACE_FOLDERS)
        def on_folders(params: None) -> list[lsp.WorkspaceFolder]:
            return [self._folder()]

        # Requests a server sends to say something changed (LSP 3.17): answered `null`, as the spec says. An
        # error here makes pyright and basedpyright exit. loomkin asks for diagnostics again at the next edit.
        for refresh in (
            lsp.WORKSPACE_DIAGNOSTIC_REFRESH,
            lsp.WORKSPACE_SEMANTIC_TOKENS_REFRESH,
            lsp.WORKSPACE_INLAY_HINT_REFRESH,
            lsp.WORKSPACE_CODE_LENS_REFRESH,
            lsp.WORKSPACE_INLINE_VALUE_REFRESH,
            lsp.WORKSPACE_FOLDING_RANGE_REFRESH,
        ):
            client.feature(refresh)(_answer_null)

        @client.feature(lsp.WINDOW_SHOW_DOCUMENT)
        def on_show_document(params: lsp.ShowDocumentParams) -> lsp.ShowDocumentResult:
            return lsp.ShowDocumentResult(success=False)  # there is no editor window to show it in

        @client.feature(lsp.WORKSPACE_APPLY_EDIT)
        def on_apply_edit(params: lsp.ApplyWorkspaceEditParams) -> lsp.ApplyWorkspaceEditResult:
            # Every change goes through loomkin's guarded write path, never straight from a server.
            return lsp.ApplyWorkspaceEditResult(applied=False, failure_reason="loomkin-mcp applies edits itself")

        @client.feature(lsp.WINDOW_SHOW_MESSAGE_REQUEST)
        def on_message_request(params: lsp.ShowMessageRequestParams) -> None:
            return None

        @client.feature(lsp.WINDOW_LOG_MESSAGE)
        def on_log(params: lsp.LogMessageParams) -> None:
            logger.debug("%s: %s", self.spec.name, params.message)
            if self.spec.loaded_log and re.match(self.spec.loaded_log, params.message):
                self.workspace_loaded.set()

        @client.feature(lsp.WINDOW_SHOW_MESSAGE)
        def on_show(params: lsp.ShowMessageParams) -> None:
            logger.debug("%s: %s", self.spec.name, params.message)

        @client.feature(lsp.TELEMETRY_EVENT)
        def on_telemetry(params: Any) -> None:
            return None

        @client.feature("$/typescriptVersion")
        def on_typescript_version(params: Any) -> None:
            return None  # typescript-language-server's own notice of the tsserver it runs

    def _folder(self) -> lsp.WorkspaceFolder:
        return lsp.WorkspaceFolder(uri=self.root.as_uri(), name=self.root.name)

    def _initialize_params(self) -> lsp.InitializeParams:
        return lsp.InitializeParams(
            # In a sandbox's own PID namespace our pid names nothing (or another process): a server that watches
            # its parent (pyright does, every few seconds) would think us gone and exit. The sandbox ends it with us.
            process_id=None if self._wrapped else os.getpid(),
            client_info=lsp.ClientInfo(name="loomkin-mcp"),
            root_uri=self.root.as_uri(),
            root_path=str(self.root),
            workspace_folders=[self._folder()],
            initialization_options=self.spec.initialization_options,
            capabilities=_CLIENT_CAPABILITIES,
        )


def _answer_null(params: Any) -> None:
    return None


TSSERVER_REQUEST = "typescript.tsserverRequest"
_TSSERVER_SEVERITY = {"error": 1, "warning": 2, "message": 3, "suggestion": 4}
_MAX_POSITION = 2**31 - 1  # LSP's uinteger


def _from_tsserver(entry: dict[str, Any]) -> lsp.Diagnostic | None:
    """A tsserver diagnostic (1-based line and UTF-16 offset) as LSP's, as typescript-language-server publishes
    it; None for an entry not of that shape."""

    def position(point: Any) -> lsp.Position:
        line, offset = point["line"], point["offset"]
        if not (isinstance(line, int) and isinstance(offset, int)):
            raise TypeError("a position of numbers")
        return lsp.Position(line=min(max(line - 1, 0), _MAX_POSITION), character=min(max(offset - 1, 0), _MAX_POSITION))

    try:
        start, end = position(entry["start"]), position(entry["end"])
    except (KeyError, TypeError):
        return None
    code = entry.get("code")
    return lsp.Diagnostic(
        range=lsp.Range(start=start, end=end),
        message=str(entry.get("text", "")),
        severity=lsp.DiagnosticSeverity(_TSSERVER_SEVERITY.get(str(entry.get("category")), 1)),
        code=code if isinstance(code, (int, str)) and not isinstance(code, bool) else None,
        source="typescript",
    )


_CLIENT_CAPABILITIES = lsp.ClientCapabilities(
    general=lsp.GeneralClientCapabilities(position_encodings=[lsp.PositionEncodingKind.Utf16]),
    window=lsp.WindowClientCapabilities(work_done_progress=True),
    workspace=lsp.WorkspaceClientCapabilities(
        workspace_folders=True,
        configuration=True,
        did_change_configuration=lsp.DidChangeConfigurationClientCapabilities(dynamic_registration=False),
        did_change_watched_files=lsp.DidChangeWatchedFilesClientCapabilities(dynamic_registration=True),
        symbol=lsp.WorkspaceSymbolClientCapabilities(),
        workspace_edit=lsp.WorkspaceEditClientCapabilities(document_changes=True),
        diagnostics=lsp.DiagnosticWorkspaceClientCapabilities(refresh_support=True),
    ),
    text_document=lsp.TextDocumentClientCapabilities(
        synchronization=lsp.TextDocumentSyncClientCapabilities(did_save=True),
        publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(
            related_information=False, version_support=True, code_description_support=True, data_support=False
        ),
        diagnostic=lsp.DiagnosticClientCapabilities(dynamic_registration=True, related_document_support=False),
        definition=lsp.DefinitionClientCapabilities(link_support=False),
        references=lsp.ReferenceClientCapabilities(),
        hover=lsp.HoverClientCapabilities(content_format=[lsp.MarkupKind.PlainText, lsp.MarkupKind.Markdown]),
        document_symbol=lsp.DocumentSymbolClientCapabilities(hierarchical_document_symbol_support=True),
        rename=lsp.RenameClientCapabilities(prepare_support=False),
    ),
)
