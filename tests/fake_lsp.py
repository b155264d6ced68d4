"""A deliberately misbehaving language server, for faults no real server shows on demand.

Usage: fake_lsp.py MODE [STATE_DIR]
(STATE_DIR defaults to $XDG_CACHE_HOME: inside loomkin's sandbox, the server's own writable cache.)
  hang      never answers initialize
  crash     exits with code 3 on textDocument/definition the first time (STATE_DIR remembers)
  garbage   answers initialize, then writes bytes that are not JSON-RPC for every request
  flood     publishes diagnostics, and floods log messages on every didOpen / didChange
  stderr    writes a megabyte to stderr before answering anything
  mute      answers initialize, then nothing (as pyright did while it waited for a configuration)
  asks      after `initialized`, asks the client a method no client knows and `workspace/configuration`
            (sections `fake.depth`, `fake`, `missing` and none); its hover shows the client's answers
Otherwise it answers initialize, publishes one diagnostic per document and answers hover.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MODE = sys.argv[1] if len(sys.argv) > 1 else "ok"
STATE = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(os.environ.get("XDG_CACHE_HOME") or ".")


def read_message() -> dict | None:
    length = None
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    return json.loads(sys.stdin.buffer.read(length or 0))


def send(message: dict) -> None:
    body = json.dumps(message).encode()
    sys.stdout.buffer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    sys.stdout.buffer.flush()


def publish(uri: str, version: int) -> None:
    diagnostic = {
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}},
        "severity": 2,
        "source": "fake",
        "message": "fake warning",
    }
    send(
        {
            "jsonrpc": "2.0",
            "method": "textDocument/publishDiagnostics",
            "params": {"uri": uri, "version": version, "diagnostics": [diagnostic]},
        }
    )


def hover(request_id: object, answers: dict[str, object]) -> None:
    text = "fake hover" + (f" {json.dumps(answers)}" if answers else "")
    send({"jsonrpc": "2.0", "id": request_id, "result": {"contents": {"kind": "plaintext", "value": text}}})


def main() -> None:
    if MODE == "stderr":
        for _ in range(16_000):
            sys.stderr.write("x" * 63 + "\n")
        sys.stderr.flush()
    answers: dict[str, object] = {}
    hover_waiting = None  # in `asks` mode the hover is answered once both answers are in
    while (message := read_message()) is not None:
        method = message.get("method")
        request_id = message.get("id")
        if method is None and request_id is not None:  # the client's answer to one of our requests
            answers[str(request_id)] = message["error"] if "error" in message else message.get("result")
            if hover_waiting is not None and len(answers) == 2:
                hover(hover_waiting, answers)
            continue
        if method == "initialized" and MODE == "asks":
            send({"jsonrpc": "2.0", "id": "unknown", "method": "fake/notAMethod", "params": {}})
            items = [{"section": "fake.depth"}, {"section": "fake"}, {"section": "missing"}, {}]
            send({"jsonrpc": "2.0", "id": "configuration", "method": "workspace/configuration",
                  "params": {"items": items}})  # fmt: skip
        if MODE == "mute" and method not in ("initialize", "shutdown", "exit"):
            continue
        if method == "initialize":
            if MODE == "hang":
                continue
            capabilities = {"textDocumentSync": 1, "hoverProvider": True, "definitionProvider": True}
            send({"jsonrpc": "2.0", "id": request_id, "result": {"capabilities": capabilities}})
        elif method == "shutdown":
            send({"jsonrpc": "2.0", "id": request_id, "result": None})
        elif method == "exit":
            return
        elif method in ("textDocument/didOpen", "textDocument/didChange"):
            document = message["params"]["textDocument"]
            if MODE == "flood":
                for n in range(5000):
                    send({"jsonrpc": "2.0", "method": "window/logMessage", "params": {"type": 4, "message": f"{n}"}})
            publish(document["uri"], document["version"])
        elif request_id is not None and MODE == "garbage":
            sys.stdout.buffer.write(b"Content-Length: 12\r\n\r\nnot json!!!!")
            sys.stdout.buffer.flush()
        elif method == "textDocument/definition" and MODE == "crash":
            assert STATE is not None
            marker = STATE / "crashed-once"
            if not marker.exists():
                marker.write_text("1")
                sys.stderr.write("fatal: the fake server crashed on purpose\n")
                sys.stderr.flush()
                sys.exit(3)
            send({"jsonrpc": "2.0", "id": request_id, "result": None})
        elif method == "textDocument/hover":
            if MODE == "asks" and len(answers) < 2:
                hover_waiting = request_id
            else:
                hover(request_id, answers)
        elif request_id is not None:
            send({"jsonrpc": "2.0", "id": request_id, "result": None})


if __name__ == "__main__":
    main()
