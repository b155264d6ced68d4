"""Edit → fresh diagnostics: through loomkin-mcp versus the language server's own answer, for pylsp (it
publishes), pyright and basedpyright (they are asked: pull diagnostics).

Both sides run in the same process, interleaved, on the same file content. The reference is a bare pygls
client that sends didChange and times the server's answer for that version — the publishDiagnostics of that
version (pylsp), or the answer to `textDocument/diagnostic` sent right after the change (pyright,
basedpyright); ours is a real MCP client calling file_edit on `loomkin-mcp --stdio` and timing the result,
which already holds the diagnostics. Each edit's result must name what the reference got (compared first).
The difference is loomkin-mcp's overhead. A server that is not installed (`make test` installs them) gives
a row that says so.

Usage: python bench/edit_diagnostics.py [--repetitions N] [--json OUT]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import load, main, person, same_or_exit, stdio_session, summary
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
BROKEN = "def main():\n    return undefined_name\n"
FIXED = "def main():\n    return 42\n"


@dataclass(frozen=True)
class Server:
    name: str
    program: Path
    args: tuple[str, ...]
    pulls: bool


SERVERS = (
    Server("pylsp", BIN / "pylsp", (), pulls=False),
    Server("pyright", REPO / "node_modules" / ".bin" / "pyright-langserver", ("--stdio",), pulls=True),
    Server("basedpyright", REPO / ".venv-servers" / "bin" / "basedpyright-langserver", ("--stdio",), pulls=True),
)


class Reference:
    """The server as a bare client drives it, the way its own tests and editors do: configured (`{}`),
    server requests answered, the change then its diagnostics."""

    def __init__(self, server: Server, root: Path) -> None:
        self.server = server
        self.root = root
        self.client = LanguageClient("bench", "1")
        self.published: asyncio.Queue[tuple[float, int | None, list[lsp.Diagnostic]]] = asyncio.Queue()
        client = self.client

        @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def on_publish(params: lsp.PublishDiagnosticsParams) -> None:
            self.published.put_nowait((time.perf_counter(), params.version, list(params.diagnostics)))

        @client.feature(lsp.WORKSPACE_CONFIGURATION)
        def on_configuration(params: lsp.ConfigurationParams) -> list[Any]:
            return [None for _ in params.items]

        for method in (lsp.WORKSPACE_DIAGNOSTIC_REFRESH, lsp.CLIENT_REGISTER_CAPABILITY,
                       lsp.WINDOW_WORK_DONE_PROGRESS_CREATE):  # fmt: skip
            client.feature(method)(lambda params: None)

    async def start(self, uri: str) -> None:
        await self.client.start_io(str(self.server.program), *self.server.args, cwd=str(self.root))
        capabilities = lsp.ClientCapabilities(
            workspace=lsp.WorkspaceClientCapabilities(configuration=True),
            text_document=lsp.TextDocumentClientCapabilities(
                publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(version_support=True),
                diagnostic=lsp.DiagnosticClientCapabilities(dynamic_registration=False),
            ),
        )
        folder = lsp.WorkspaceFolder(uri=self.root.as_uri(), name=self.root.name)
        await self.client.initialize_async(lsp.InitializeParams(
            process_id=os.getpid(), root_uri=self.root.as_uri(), capabilities=capabilities, workspace_folders=[folder]
        ))  # fmt: skip
        self.client.initialized(lsp.InitializedParams())
        self.client.workspace_did_change_configuration(lsp.DidChangeConfigurationParams(settings={}))
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=FIXED)
        ))  # fmt: skip
        await self.diagnostics(uri, 1)

    async def diagnostics(self, uri: str, version: int) -> list[lsp.Diagnostic]:
        if self.server.pulls:
            params = lsp.DocumentDiagnosticParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
            report = await asyncio.wait_for(self.client.text_document_diagnostic_async(params), 30)
            return list(getattr(report, "items", []) or [])
        while True:
            _, got, items = await asyncio.wait_for(self.published.get(), 30)
            if got == version:
                return items

    async def edit(self, uri: str, version: int, text: str) -> tuple[float, list[lsp.Diagnostic]]:
        while not self.published.empty():
            self.published.get_nowait()
        started = time.perf_counter()
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        ))  # fmt: skip
        items = await self.diagnostics(uri, version)
        return (time.perf_counter() - started) * 1000, items

    async def stop(self) -> None:
        await asyncio.wait_for(self.client.shutdown_async(None), 5)
        self.client.exit(None)
        await self.client.stop()


async def measure(server: Server, repetitions: int, base: Path) -> dict[str, Any]:
    row: dict[str, Any] = {
        "measure": f"edit → fresh diagnostics in the tool result ({server.name})",
        "reference": f"{server.name}'s own didChange → "
        + ("textDocument/diagnostic answer" if server.pulls else "publishDiagnostics of that version"),
        "target": "overhead ≤ 30 ms at the median",
        "load": load(),
    }
    if not server.program.exists():
        return row | {"met": False, "context": f"{server.program} is not installed (make test installs it)"}
    ref_root, our_root = base / server.name / "reference", base / server.name / "ours"
    for root in (ref_root, our_root):
        root.mkdir(parents=True)
        (root / "app.py").write_text(FIXED)
    args = ", ".join(f'"{arg}"' for arg in server.args)
    entry = f'{{ name = "{server.name}", command = "{server.program}", args = [{args}], languages = ["python"] }}'
    (our_root / ".loomkin.toml").write_text(f"[lsp]\nservers = [{entry}]\n")

    reference_client = Reference(server, ref_root)
    uri = (ref_root / "app.py").as_uri()
    await reference_client.start(uri)
    reference, ours = [], []
    env = person(base / server.name / "home", our_root)  # the person trusted this language server entry
    async with stdio_session(str(BIN / "loomkin-mcp"), "--stdio", "--root", str(our_root), env=env) as session:
        # Warm, as the reference is: the server started and the file's diagnostics known.
        await session.call_tool("lsp_diagnostics", {"file_path": "app.py"})
        current = FIXED
        for n in range(repetitions):
            target = BROKEN if current == FIXED else FIXED
            took, expected = await reference_client.edit(uri, n + 2, target)
            reference.append(took)
            started = time.perf_counter()
            result = await session.call_tool(
                "file_edit", {"file_path": "app.py", "old_string": current, "new_string": target}
            )
            ours.append((time.perf_counter() - started) * 1000)
            text = result.content[0].text
            missing = [d.message for d in expected if " ".join(d.message.split()) not in text]
            same_or_exit(f"{server.name}: diagnostics the edit result lacks", missing, [])
            if not expected and f"{server.name}: no problems in app.py" not in text:
                same_or_exit(f"{server.name}: the edit result for a clean file", text.splitlines()[-1], "no problems")
            current = target
    await reference_client.stop()
    overhead = [o - r for o, r in zip(ours, reference, strict=True)]
    return row | {
        "repetitions": repetitions,
        "reference_ms": summary(reference),
        "ours_ms": summary(ours),
        "overhead_ms": summary(overhead),
        "ratio": statistics.median(ours) / statistics.median(reference),
        "met": statistics.median(overhead) <= 30,
    }


async def run(repetitions: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        return {"rows": [await measure(server, repetitions, Path(tmp)) for server in SERVERS]}


if __name__ == "__main__":
    main(__doc__, "repetitions", 20, lambda count: asyncio.run(run(count)))
