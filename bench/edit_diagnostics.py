"""Edit → fresh diagnostics: through loomkin-mcp versus pylsp's own didChange → publish.

Both sides run in the same process, interleaved, on the same file content. The reference is
a bare pygls client that sends didChange to pylsp and times the publishDiagnostics for that
version; ours is a real MCP client calling file_edit on `loomkin-mcp --stdio` and timing the
result, which already holds the diagnostics. The difference is loomkin-mcp's overhead.

Usage: python bench/edit_diagnostics.py [--repetitions N] [--json OUT]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import load, main, person, stdio_session, summary
from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

BIN = Path(sys.executable).parent
BROKEN = "def main():\n    return undefined_name\n"
FIXED = "def main():\n    return 42\n"


async def reference_client(root: Path) -> tuple[LanguageClient, asyncio.Queue]:
    client = LanguageClient("bench", "1")
    published: asyncio.Queue = asyncio.Queue()

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_publish(params: lsp.PublishDiagnosticsParams) -> None:
        published.put_nowait((time.perf_counter(), params.version))

    await client.start_io(str(BIN / "pylsp"), cwd=str(root))
    capabilities = lsp.ClientCapabilities(
        text_document=lsp.TextDocumentClientCapabilities(
            publish_diagnostics=lsp.PublishDiagnosticsClientCapabilities(version_support=True)
        )
    )
    await client.initialize_async(
        lsp.InitializeParams(process_id=os.getpid(), root_uri=root.as_uri(), capabilities=capabilities)
    )
    client.initialized(lsp.InitializedParams())
    return client, published


async def measure_reference(
    client: LanguageClient, published: asyncio.Queue, uri: str, version: int, text: str
) -> float:
    while not published.empty():
        published.get_nowait()
    started = time.perf_counter()
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    while True:
        at, got = await asyncio.wait_for(published.get(), 30)
        if got == version:
            return (at - started) * 1000


async def run(repetitions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ref_root, our_root = base / "reference", base / "ours"
        for root in (ref_root, our_root):
            root.mkdir()
            (root / "app.py").write_text(FIXED)
        (our_root / ".loomkin.toml").write_text('[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n')

        client, published = await reference_client(ref_root)
        uri = (ref_root / "app.py").as_uri()
        client.text_document_did_open(
            lsp.DidOpenTextDocumentParams(
                text_document=lsp.TextDocumentItem(uri=uri, language_id="python", version=1, text=FIXED)
            )
        )
        await asyncio.wait_for(published.get(), 30)

        reference, ours = [], []
        env = person(base / "home", our_root)  # the person trusted this language server entry
        async with stdio_session(str(BIN / "loomkin-mcp"), "--stdio", "--root", str(our_root), env=env) as session:
            await session.call_tool("file_read", {"file_path": "app.py"})  # warm: server started, baseline known
            current = FIXED
            for n in range(repetitions):
                target = BROKEN if current == FIXED else FIXED
                reference.append(await measure_reference(client, published, uri, n + 2, target))
                started = time.perf_counter()
                result = await session.call_tool(
                    "file_edit", {"file_path": "app.py", "old_string": current, "new_string": target}
                )
                ours.append((time.perf_counter() - started) * 1000)
                text = result.content[0].text
                if "pylsp" not in text:
                    raise SystemExit(f"no diagnostics in the edit result: {text}")
                current = target
        await asyncio.wait_for(client.shutdown_async(None), 5)
        client.exit(None)
        await client.stop()

    overhead = [o - r for o, r in zip(ours, reference, strict=True)]
    return {
        "measure": "edit → fresh diagnostics in the tool result (pylsp)",
        "reference": "pylsp's own didChange → publishDiagnostics",
        "repetitions": repetitions,
        "reference_ms": summary(reference),
        "ours_ms": summary(ours),
        "overhead_ms": summary(overhead),
        "ratio": statistics.median(ours) / statistics.median(reference),
        "target": "overhead ≤ 30 ms at the median",
        "met": statistics.median(overhead) <= 30,
        "load": load(),
    }


if __name__ == "__main__":
    main(__doc__, "repetitions", 20, lambda count: asyncio.run(run(count)))
