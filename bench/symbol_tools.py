"""The symbol tools beside Serena's on the same tasks and file: the stdlib's subprocess.py (2,209 lines).

- Tokens returned to read one method (`Popen/communicate`, with its body), against Serena's
  `find_symbol` and against reading the whole file with `file_read`.
- Latency of that find, and of replacing the method's body with itself (the file ends as it began),
  as a client waits; both sides' answers compared first (the same method source; the file unchanged).

And on a real project with pyright, the most used Python server, on both sides: httpx (the bundle in
../shared/corpora, or the repository `LOOMKIN_SYMBOL_REPO` names; this repository where neither is there),
`Client/send` found with its body and its references listed, each call alternating with Serena's in one
run, both answers compared first (the same body; the same places, as file and line).

Serena runs from PyPI (`serena-agent`, in `SERENA` — its `serena` command — from `bench/.venv-serena`)
with its Python language server; where it does not install or start, the row says so.

Usage: python bench/symbol_tools.py [--calls N] [--json OUT]
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import anyio
from _common import load, main, person, same_or_exit, stdio_session, summary
from mcp import ClientSession

HERE = Path(__file__).resolve().parent
LOOMKIN = str(Path(sys.executable).parent / "loomkin-mcp")
SERENA = os.environ.get("SERENA", str(HERE / ".venv-serena" / "bin" / "serena"))
FILE = "subprocess.py"
METHOD = "Popen/communicate"
APPROVED = '[permissions]\nauto_approve = ["symbol_*"]\n'
WITH_PYLSP = '[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n' + APPROVED
WITHOUT_SERVER = "[lsp]\nenabled = false\n" + APPROVED
PYRIGHT = HERE.parent / "node_modules" / ".bin" / "pyright-langserver"
WITH_PYRIGHT = (
    f'[lsp]\nservers = [{{ name = "pyright", command = "{PYRIGHT}", args = ["--stdio"], languages = ["python"] }}]\n'
)
HTTPX_BUNDLE = HERE.parent.parent / "shared" / "corpora" / "httpx.bundle"
# (file, name path) to find and list the references of, per project.
PYRIGHT_TARGETS = {"httpx": ("httpx/_client.py", "Client/send"),
                   "loomkin-mcp": ("loomkin_mcp/lsp/_session.py", "LspSession/request")}  # fmt: skip
SERENA_ARGS = ["start-mcp-server", "--context", "ide", "--agent-interface", "tools", "--transport", "stdio",
               "--enable-web-dashboard", "false", "--enable-gui-log-window", "false"]  # fmt: skip


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
    try:
        async with serena_session(root) as session:
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


def serena_session(root: Path):  # noqa: ANN201 - stdio_session's context manager
    # Serena 2's `ide` context with one tool per operation (its default is a Python REPL tool).
    # Serena starts its Python language server with `uvx`: bench/serena-bin/uvx runs the pyright installed beside it.
    env = {"HOME": str(root.parent / "serena-home"), "PATH": f"{HERE / 'serena-bin'}:{os.environ['PATH']}"}
    return stdio_session(SERENA, *SERENA_ARGS, "--project", str(root), env=env)


def pyright_project(into: Path) -> tuple[Path, str]:
    """A checkout of httpx (or of the repository LOOMKIN_SYMBOL_REPO names, or this one) and its name."""
    source = os.environ.get("LOOMKIN_SYMBOL_REPO") or (str(HTTPX_BUNDLE) if HTTPX_BUNDLE.exists() else "")
    root = into / "pyright-project"
    if source:
        subprocess.run(["git", "clone", "-q", source, str(root)], check=True)
        return root, "httpx"
    shutil.copytree(HERE.parent, root, ignore=shutil.ignore_patterns(".*", "node_modules", "build", "bench"))
    return root, "loomkin-mcp"


def places_of_ours(text: str) -> set[tuple[str, int]]:
    """symbol_references' rows, `path:line in …`, as (path, line)."""
    return {(m[1], int(m[2])) for m in re.finditer(r"^(\S+?):(\d+)(?: in |$)", text, re.M)}


def places_of_serena(text: str) -> set[tuple[str, int]]:
    """find_referencing_symbols' answer: per file, referencing symbols whose `content_around_reference` marks
    the reference's line (0-based, as all Serena's lines) with `>`."""
    found = set()
    for path, kinds in json.loads(text).items():
        for symbols in kinds.values():
            for symbol in symbols:
                around = symbol["content_around_reference"]
                found |= {(path, int(m[1]) + 1) for m in re.finditer(r"^\s*>\s*(\d+):", around, re.M)}
    return found


async def pyright_rows(calls: int) -> list[dict]:
    """symbol_find and symbol_references with pyright running, alternating with Serena's own (pyright too)."""
    rows = [
        {"measure": f"{what} with pyright running", "reference": f"Serena 2.1 {tool} (pyright)",
         "target": "≤ Serena's p50"}
        for what, tool in (("symbol_find with body", "find_symbol"), ("symbol_references", "find_referencing_symbols"))
    ]  # fmt: skip
    if not PYRIGHT.exists():
        return [row | {"met": False, "context": f"{PYRIGHT} is not installed (make test installs it)"} for row in rows]
    if not SERENA or not Path(SERENA).exists():
        return [row | {"met": False, "context": "serena-agent is not installed"} for row in rows]
    with tempfile.TemporaryDirectory() as tmp:
        ours_root, name = pyright_project(Path(tmp) / "ours")
        theirs_root, _ = pyright_project(Path(tmp) / "serena")
        path, name_path = PYRIGHT_TARGETS[name]
        timings: dict[str, list[float]] = {"ours_find": [], "ours_refs": [], "serena_find": [], "serena_refs": []}
        env = person(Path(tmp) / "home", ours_root, WITH_PYRIGHT + APPROVED)
        async with (
            stdio_session(LOOMKIN, "--stdio", "--root", str(ours_root), env=env) as ours,
            serena_session(theirs_root) as theirs,
        ):
            calls_of = {
                "ours_find": (ours, "symbol_find", {"name_path": name_path, "path": path, "include_body": True}),
                "ours_refs": (ours, "symbol_references", {"name_path": name_path, "path": path}),
                "serena_find": (theirs, "find_symbol",
                                {"name_path_pattern": name_path, "relative_path": path, "include_body": True}),
                "serena_refs": (theirs, "find_referencing_symbols", {"name_path": name_path, "relative_path": path}),
            }  # fmt: skip
            answers = {}
            for key, (session, tool, arguments) in calls_of.items():
                with anyio.fail_after(300):  # the first call starts (and indexes with) the language server
                    answers[key] = await _call(session, tool, arguments)
            body = json.loads(answers["serena_find"])[0]["body"]
            same_or_exit(f"{name_path}'s body", answers["ours_find"].split("\n", 1)[1].strip(), body.strip())
            same_or_exit(f"{name_path}'s references", places_of_ours(answers["ours_refs"]),
                         places_of_serena(answers["serena_refs"]))  # fmt: skip
            for _ in range(calls):
                for key, (session, tool, arguments) in calls_of.items():
                    started = time.perf_counter()
                    await _call(session, tool, arguments)
                    timings[key].append((time.perf_counter() - started) * 1000)
    for row, task in zip(rows, ("find", "refs"), strict=True):
        mine, reference = timings[f"ours_{task}"], timings[f"serena_{task}"]
        row["measure"] += f", {name_path} in {name} ({path}; {len(places_of_ours(answers['ours_refs']))} references)"
        row |= {"ours_ms": summary(mine), "reference_ms": summary(reference), "load": load(),
                "ratio": round(statistics.median(mine) / statistics.median(reference), 2)}  # fmt: skip
        row["met"] = row["ratio"] <= 1.0
    return rows


async def _call(session: ClientSession, tool: str, arguments: dict) -> str:
    result = await session.call_tool(tool, arguments)
    text = result.content[0].text
    if result.is_error:
        raise SystemExit(f"{tool} failed: {text[:300]}")
    return text


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
    rows.extend(anyio.run(pyright_rows, calls))
    return {"rows": rows}


if __name__ == "__main__":
    main(__doc__, "calls", 30, run)
