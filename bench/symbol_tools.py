"""The symbol tools beside Serena's on the same tasks and file: the stdlib's subprocess.py (2,209 lines).

- Tokens returned to read one method (`Popen/communicate`, with its body), against Serena's
  `find_symbol` and against reading the whole file with `file_read`.
- Latency of that find, and of replacing the method's body with itself (the file ends as it began),
  as a client waits; both sides' answers compared first (the same method source; the file unchanged).

Serena runs from PyPI (`serena-agent`, in `SERENA` — its `serena` command — from `bench/.venv-serena`)
with its Python language server; where it does not install or start, the row says so.

Usage: python bench/symbol_tools.py [--calls N] [--json OUT]
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import anyio
from _common import load, main, person, same_or_exit, stdio_session, summary

HERE = Path(__file__).resolve().parent
LOOMKIN = str(Path(sys.executable).parent / "loomkin-mcp")
SERENA = os.environ.get("SERENA", str(HERE / ".venv-serena" / "bin" / "serena"))
FILE = "subprocess.py"
METHOD = "Popen/communicate"
APPROVED = '[permissions]\nauto_approve = ["symbol_*"]\n'
WITH_PYLSP = '[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n' + APPROVED
WITHOUT_SERVER = "[lsp]\nenabled = false\n" + APPROVED


def tokens(text: str) -> int:
    return -(-len(text) // 4)


def method_source(text: str) -> str:
    """communicate's lines as they are in the file, from `def` to its last line."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("    def communicate("))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("    def "))
    while not lines[end - 1].strip():
        end -= 1
    return "\n".join(lines[start:end])


async def ours(root: Path, calls: int, source: str, config: str) -> dict:
    body = source.strip()
    finds, replaces = [], []
    env = person(root.parent / "home", root, config)
    async with stdio_session(LOOMKIN, "--stdio", "--root", str(root), env=env) as session:
        whole = (await session.call_tool("file_read", {"file_path": FILE, "limit": 5000})).content[0].text
        found = await session.call_tool("symbol_find", {"name_path": METHOD, "path": FILE, "include_body": True})
        text = found.content[0].text
        same_or_exit("symbol_find body", text.split("\n", 1)[1], source)
        for _ in range(calls):
            started = time.perf_counter()
            await session.call_tool("symbol_find", {"name_path": METHOD, "path": FILE, "include_body": True})
            finds.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            result = await session.call_tool("symbol_replace_body", {"name_path": METHOD, "path": FILE, "body": body})
            replaces.append((time.perf_counter() - started) * 1000)
            if result.is_error:
                raise SystemExit(f"symbol_replace_body failed: {result.content[0].text}")
    return {"read_tokens": tokens(text), "file_read_tokens": tokens(whole), "find": finds, "replace": replaces}


async def serena(root: Path, calls: int, source: str) -> dict | str:
    if not SERENA or not Path(SERENA).exists():
        return "serena-agent is not installed (make install-bench installs it in bench/.venv-serena)"
    finds, replaces = [], []
    # Serena 2's `ide` context with one tool per operation (its default is a Python REPL tool).
    args = ["start-mcp-server", "--project", str(root), "--context", "ide", "--agent-interface", "tools",
            "--transport", "stdio", "--enable-web-dashboard", "false", "--enable-gui-log-window", "false"]  # fmt: skip
    # Serena starts its Python language server with `uvx`: bench/serena-bin/uvx runs the pyright installed beside it.
    env = {"HOME": str(root.parent / "serena-home"), "PATH": f"{HERE / 'serena-bin'}:{os.environ['PATH']}"}
    try:
        async with stdio_session(SERENA, *args, env=env) as session:
            arguments = {"name_path_pattern": METHOD, "relative_path": FILE, "include_body": True}
            with anyio.fail_after(300):  # its language server indexes the project on the first call
                found = await session.call_tool("find_symbol", arguments)
            text = found.content[0].text
            try:
                body = json.loads(text)[0]["body"]
            except (ValueError, LookupError, TypeError):
                return f"Serena's find_symbol did not return the method: {text[:300]}"
            if body != source.strip():
                return f"Serena's find_symbol returned another text: {body[:300]}"
            for _ in range(calls):
                started = time.perf_counter()
                await session.call_tool("find_symbol", arguments)
                finds.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                result = await session.call_tool(
                    "replace_symbol_body", {"name_path": METHOD, "relative_path": FILE, "body": source.strip()}
                )
                replaces.append((time.perf_counter() - started) * 1000)
                if result.is_error:
                    return f"Serena's replace_symbol_body failed: {result.content[0].text[:300]}"
    except Exception as exc:  # noqa: BLE001 - whatever stops Serena is reported in the row
        return f"Serena did not run here: {type(exc).__name__}: {str(exc)[:300]}"
    return {"read_tokens": tokens(text), "find": finds, "replace": replaces}


def run(calls: int) -> dict:
    sides = {
        "ours": lambda root, source: ours(root, calls, source, WITH_PYLSP),
        "ours_alone": lambda root, source: ours(root, calls, source, WITHOUT_SERVER),
        "serena": lambda root, source: serena(root, calls, source),
    }
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for side, measure in sides.items():
            root = Path(tmp) / side / "project"
            root.mkdir(parents=True)
            shutil.copyfile(Path(sysconfig.get_paths()["stdlib"]) / FILE, root / FILE)
            original = (root / FILE).read_text()
            results[side] = anyio.run(measure, root, method_source(original))
            same_or_exit(f"{side}: {FILE} after replacing the method with itself", (root / FILE).read_text(), original)
    mine, alone, theirs = results["ours"], results["ours_alone"], results["serena"]
    assert isinstance(mine, dict) and isinstance(alone, dict)
    reference = theirs if isinstance(theirs, dict) else None
    note = "" if reference else f"; {theirs}"
    rows = [{
        "measure": f"tokens to read one method ({METHOD}) of a 2,209-line file",
        "ours_tokens": mine["read_tokens"],
        "reference": "Serena 2.1 find_symbol (include_body)",
        "reference_tokens": reference["read_tokens"] if reference else None,
        "context": f"file_read of the whole file: {mine['file_read_tokens']} tokens{note}",
        "target": "≤ Serena's",
        "met": reference is not None and mine["read_tokens"] <= reference["read_tokens"],
        "load": load(),
    }]  # fmt: skip
    cases = (
        (alone, "find", "symbol_find with body (no language server)", "find_symbol"),
        (mine, "find", "symbol_find with body (pylsp running)", "find_symbol"),
        (alone, "replace", "symbol_replace_body (no language server)", "replace_symbol_body"),
        (mine, "replace", "symbol_replace_body with pylsp's fresh diagnostics in the result", "replace_symbol_body"),
    )
    for side, task, what, their_tool in cases:
        row = {
            "measure": f"{what}, {METHOD} in {FILE}",
            "ours_ms": summary(side[task]),
            "reference": f"Serena 2.1 {their_tool} (pyright)",
            "target": "≤ Serena's p50",
            "load": load(),
        }
        if reference:
            row["reference_ms"] = summary(reference[task])
            row["ratio"] = round(statistics.median(side[task]) / statistics.median(reference[task]), 2)
            row["met"] = row["ratio"] <= 1.0
        else:
            row["context"] = theirs
            row["met"] = False
        rows.append(row)
    return {"rows": rows}


if __name__ == "__main__":
    main(__doc__, "calls", 30, run)
