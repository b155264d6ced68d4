"""What containment costs: the sandbox per shell call, per git call and per language-server start, and the
descriptor walk per file_read.

Measured in one run, interleaved, each against the same thing without it:
- a `shell` call (`true`) through a real MCP client over stdio, with the commands in bubblewrap
  (the default) against the same server whose person's config says `[shell] sandbox = false`;
- a `git status` through the git tool, the same two servers (git in bubblewrap, or not);
- a language server's start (pylsp: spawn, initialize, shutdown), in bubblewrap or not, in-process;
- `file_read` of a 4 KB file four directories deep, in-process (the tool's own work, no protocol):
  the descriptor walk (every component opened with O_NOFOLLOW from the root's descriptor) against
  opening the same resolved path by name, as file_read did before.

Usage: python bench/containment_costs.py [--calls N] [--json OUT]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import load, main, person, same_or_exit, stdio_session, summary

BIN = Path(sys.executable).parent
READS = 2000


def _project(tmp: Path) -> Path:
    root = tmp / "proj"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "c" / "four_kb.txt").write_text(("x" * 63 + "\n") * 64)
    (root / "LOOMKIN.md").write_text("## Allowed Operations\n- Shell: `true`\n")
    return root


async def interleaved_calls(tmp: Path, root: Path, calls: int, tool: str, arguments: dict, label: str) -> dict:
    """`tool` called alternately on a server with the sandbox (the default) and one whose person's config says
    `[shell] sandbox = false`; both answers compared before the timings count."""
    confined_env = person(tmp / f"{tool}-confined", root)
    unconfined_env = person(tmp / f"{tool}-unconfined", root, "[shell]\nsandbox = false\n")
    confined, unconfined = [], []
    server = (str(BIN / "loomkin-mcp"), "--stdio", "--root", str(root))
    async with (
        stdio_session(*server, env=confined_env) as ours,
        stdio_session(*server, env=unconfined_env) as reference,
    ):
        for index in range(calls + 5):
            started = time.perf_counter()
            first = await ours.call_tool(tool, arguments)
            middle = time.perf_counter()
            second = await reference.call_tool(tool, arguments)
            done = time.perf_counter()
            assert not first.is_error and not second.is_error, (first, second)
            # Both answered alike (a shell result's duration, in brackets, differs).
            same_or_exit(tool, first.content[0].text.split("[")[0], second.content[0].text.split("[")[0])
            if index >= 5:
                confined.append((middle - started) * 1000)
                unconfined.append((done - middle) * 1000)
    added = statistics.median(confined) - statistics.median(unconfined)
    return {
        "measure": f"{label} in bubblewrap, {calls} calls over stdio",
        "ours_ms": summary(confined),
        "reference": f"the same server with `[shell] sandbox = false` ({tool} unconfined)",
        "reference_ms": summary(unconfined),
        "added_ms_at_median": round(added, 1),
        "target": "≤ 15 ms added at the median",
        "met": added <= 15,
        "load": load(),
        "samples": {"ours": confined, "reference": unconfined},
    }


async def language_server_starts(tmp: Path, root: Path, starts: int) -> dict:
    from loomkin_lsp_client import ServerConnection, detect_servers
    from loomkin_mcp.config import load_settings
    from loomkin_mcp.sandbox._service import Sandbox
    from loomkin_mcp.workspace import Workspace

    (root / "app.py").write_text("def main():\n    return 1\n")
    [spec] = [spec for spec in detect_servers(root, {"python"}) if spec.name == "pylsp"]
    sandboxes = {}
    for name, config in (("confined", ""), ("unconfined", "[shell]\nsandbox = false\n")):
        home = tmp / f"lsp-{name}"
        (home / "loomkin").mkdir(parents=True, exist_ok=True)
        (home / "loomkin" / "loomkin.toml").write_text(config)
        workspace = Workspace(root, load_settings(root, environ={**os.environ, "XDG_CONFIG_HOME": str(home)}))
        sandboxes[name] = Sandbox(workspace)

    async def start(name: str) -> tuple[float, str]:
        sandbox = sandboxes[name]
        connection = ServerConnection(spec, root, launcher=lambda s, argv: sandbox.language_server(s.name, argv, s.env))
        began = time.perf_counter()
        await connection.start(60)
        elapsed = (time.perf_counter() - began) * 1000
        info = connection.server_info
        await connection.stop()
        return elapsed, f"{info.name if info else ''} {info.version if info else ''}"

    confined, unconfined = [], []
    for index in range(starts + 1):
        ours, ours_server = await start("confined")
        theirs, their_server = await start("unconfined")
        same_or_exit("language server", ours_server, their_server)
        if index >= 1:
            confined.append(ours)
            unconfined.append(theirs)
    added = statistics.median(confined) - statistics.median(unconfined)
    return {
        "measure": f"pylsp start (spawn → initialize answered) in bubblewrap, {starts} starts",
        "ours_ms": summary(confined),
        "reference": "the same start unconfined",
        "reference_ms": summary(unconfined),
        "added_ms_at_median": round(added, 1),
        "target": "≤ 15 ms added at the median",
        "met": added <= 15,
        "load": load(),
    }


def file_reads(root: Path) -> dict:
    from loomkin_mcp.config import load_settings
    from loomkin_mcp.files._service import FileService, _numbered_lines
    from loomkin_mcp.workspace import Workspace

    service = FileService(Workspace(root, load_settings(root)))
    path = root / "a" / "b" / "c" / "four_kb.txt"

    def by_name() -> str:
        with open(path, "rb") as handle:
            return _numbered_lines(handle, "a/b/c/four_kb.txt", 1, 2000)

    read = service.read("a/b/c/four_kb.txt")
    assert read is not None and read.text == by_name()
    walked, named = [], []
    for _ in range(READS):
        started = time.perf_counter()
        service.read("a/b/c/four_kb.txt")
        middle = time.perf_counter()
        service._ws.resolve("a/b/c/four_kb.txt")  # the same path check, then the open by name
        by_name()
        done = time.perf_counter()
        walked.append((middle - started) * 1000)
        named.append((done - middle) * 1000)
    added_us = (statistics.median(walked) - statistics.median(named)) * 1000
    return {
        "measure": "file_read 4 KB, 4 levels deep, in-process (descriptor walk)",
        "ours_ms": summary(walked),
        "reference": "the same read opening the resolved path by name",
        "reference_ms": summary(named),
        "ratio": round(statistics.median(walked) / statistics.median(named), 2),
        "context": f"{added_us:.0f} µs added per read",
        "target": "≤ 50 µs added per read",
        "met": added_us <= 50,
        "load": load(),
    }


def run(calls: int) -> dict:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        root = _project(tmp)
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        rows = [
            anyio.run(interleaved_calls, tmp, root, calls, "shell", {"command": "true"}, "shell call (`true`)"),
            anyio.run(interleaved_calls, tmp, root, calls, "git", {"operation": "status"}, "git status (git tool)"),
            anyio.run(language_server_starts, tmp, root, max(3, calls // 20)),
            file_reads(root),
        ]
    return {"rows": rows}


if __name__ == "__main__":
    main(__doc__, "calls", 100, run)
