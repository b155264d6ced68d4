"""What a user feels of a server they don't notice: start-up, memory, and a file_read round trip.

Measured in one run, interleaved, against:
- start-up (spawn -> initialize result, every start kept) and RSS: a bare mcp 2.x `MCPServer`
  with one tool, and `@modelcontextprotocol/server-filesystem` (npm) for context;
- a 4 KB file_read round trip through the Python SDK client over stdio: server-filesystem's
  `read_text_file` on the same file, and a bare `MCPServer` echoing the same 4 KB (the SDK's floor);
  the three answers are compared before any time counts;
- one HTTP daemon without `--root`, two projects: the first call of a session of the second project (its project
  opened on demand: roots asked, config read, services made) against the first project's first call, in fresh
  daemons, the order of the two projects alternating; both answers compared first.

Usage: python bench/server_costs.py [--repetitions N] [--json OUT]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import copy_corpus, load, main, same_or_exit, stdio_session, summary

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
FILESYSTEM = HERE.parent / "node_modules" / ".bin" / "mcp-server-filesystem"
INITIALIZE = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
})  # fmt: skip


def commands(root: Path) -> dict[str, list[str]]:
    return {
        "ours": [str(BIN / "loomkin-mcp"), "--stdio", "--root", str(root)],
        "bare": [sys.executable, str(HERE / "_bare_server.py")],
        "filesystem": [str(FILESYSTEM), str(root)],
    }


def spawn_to_initialize(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, int, subprocess.Popen[str]]:
    """ms from spawn to the initialize result, the RSS (KB) then, and the still-running process (`env` added to
    ours)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=os.environ | (env or {}),
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(INITIALIZE + "\n")
    process.stdin.flush()
    while True:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"{argv[0]} exited before answering initialize")
        if '"id":1' in line.replace(" ", ""):
            if '"result"' not in line:
                raise SystemExit(f"{argv[0]} refused initialize: {line[:300]}")
            break
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, rss_kb(process.pid), process


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def startup_and_idle_memory(root: Path, repetitions: int) -> list[dict]:
    times: dict[str, list[float]] = {name: [] for name in commands(root)}
    memory: dict[str, list[int]] = {name: [] for name in commands(root)}
    for _ in range(repetitions):
        for name, argv in commands(root).items():
            elapsed, rss, process = spawn_to_initialize(argv, root)
            time.sleep(0.5)  # let start-up garbage settle before reading the idle RSS
            times[name].append(elapsed)
            memory[name].append(rss_kb(process.pid) or rss)
            stop(process)
    ours, bare = statistics.median(times["ours"]), statistics.median(times["bare"])
    idle_mb = statistics.median(memory["ours"]) / 1024
    return [
        {
            "measure": "spawn → initialize result",
            "ours_ms": summary(times["ours"]),
            "reference": "bare mcp 2.3 MCPServer with one tool",
            "reference_ms": summary(times["bare"]),
            "context": f"server-filesystem (npm): {statistics.median(times['filesystem']):.0f} ms",
            "added_ms_at_median": round(ours - bare, 1),
            "target": "≤ bare + 50 ms",
            "met": ours - bare <= 50,
            "load": load(),
        },
        {
            "measure": "RSS idle, after initialize",
            "ours_mb": round(idle_mb, 1),
            "reference": "bare mcp 2.3 MCPServer",
            "reference_mb": round(statistics.median(memory["bare"]) / 1024, 1),
            "ratio": round(idle_mb * 1024 / statistics.median(memory["bare"]), 2),
            "context": f"server-filesystem (npm): {statistics.median(memory['filesystem']) / 1024:.0f} MB",
            "target": "≤ 90 MB",
            "met": idle_mb <= 90,
            "load": load(),
        },
    ]


async def file_read_round_trips(root: Path, calls: int) -> dict:
    (root / "four_kb.txt").write_text(("x" * 63 + "\n") * 64)
    ours, reference, bare = [], [], []
    async with (
        stdio_session(str(BIN / "loomkin-mcp"), "--stdio", "--root", str(root)) as session,
        stdio_session(str(FILESYSTEM), str(root)) as reference_session,
        stdio_session(sys.executable, str(HERE / "_bare_server.py")) as bare_session,
    ):
        four_kb = (root / "four_kb.txt").read_text()
        path = str(root / "four_kb.txt")
        for index in range(calls + 20):
            started = time.perf_counter()
            our_result = await session.call_tool("file_read", {"file_path": "four_kb.txt"})
            middle = time.perf_counter()
            reference_result = await reference_session.call_tool("read_text_file", {"path": path})
            done = time.perf_counter()
            bare_result = await bare_session.call_tool("echo", {"message": four_kb})
            ended = time.perf_counter()
            if index < 20:  # the first calls warm all three up, and their answers are compared
                numbered = our_result.content[0].text.splitlines()
                same_or_exit("file_read", "\n".join(line.split("\t", 1)[1] for line in numbered) + "\n", four_kb)
                same_or_exit("read_text_file", reference_result.content[0].text, four_kb)
                same_or_exit("echo", bare_result.content[0].text, four_kb)
                continue
            ours.append((middle - started) * 1000)
            reference.append((done - middle) * 1000)
            bare.append((ended - done) * 1000)
    p50 = statistics.median(ours) / statistics.median(reference)
    p50_bare = statistics.median(ours) / statistics.median(bare)
    return {
        "measure": "file_read 4 KB round trip over stdio",
        "ours_ms": summary(ours),
        "reference": "server-filesystem read_text_file",
        "reference_ms": summary(reference),
        "bare_ms": summary(bare),
        "ratio": round(p50, 2),
        "ratio_bare": round(p50_bare, 2),
        "context": f"a bare mcp 2.3 MCPServer echoing the same 4 KB: p50 {statistics.median(bare):.2f} ms "
        f"({p50_bare:.2f}×)",
        "target": "p50 ≤ 1.0× server-filesystem and ≤ 1.1× the bare echo",
        "met": p50 <= 1.0 and p50_bare <= 1.1,
        "load": load(),
        "samples": {"ours": ours, "reference": reference},
    }


async def second_project_first_call(root: Path, repetitions: int) -> dict:
    """ms as the client waits for each project's first file_read in one rootless daemon (session set up first)."""
    import socket

    import httpx2
    import mcp_types as types
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    projects = [root / "alpha", root / "beta"]
    for project in projects:
        project.mkdir()
        (project / "four_kb.txt").write_text(("y" * 63 + "\n") * 64)
    first: list[float] = []
    second: list[float] = []
    for repetition in range(repetitions):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        daemon = subprocess.Popen(
            [str(BIN / "loomkin-mcp"), "--http", "--port", str(port)], cwd=root,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(300):
                with socket.socket() as attempt:
                    if attempt.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.05)
            order = projects if repetition % 2 == 0 else projects[::-1]
            answers = []
            for index, project in enumerate(order):

                async def roots(context: object, project: Path = project) -> types.ListRootsResult:
                    return types.ListRootsResult(roots=[types.Root(uri=project.as_uri())])

                async with (
                    httpx2.AsyncClient(timeout=60) as http,
                    streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http) as streams,
                    ClientSession(streams[0], streams[1], list_roots_callback=roots) as session,
                ):
                    await session.initialize()
                    started = time.perf_counter()
                    result = await session.call_tool("file_read", {"file_path": "four_kb.txt"})
                    (first if index == 0 else second).append((time.perf_counter() - started) * 1000)
                    answers.append(result.content[0].text)  # type: ignore[union-attr]
            same_or_exit("a project's first file_read", answers[1], answers[0])
        finally:
            daemon.terminate()
            daemon.wait(timeout=30)
    ratio = statistics.median(second) / statistics.median(first)
    return {
        "measure": "a second project's first call, one daemon without --root (file_read 4 KB)",
        "ours_ms": summary(second),
        "reference": "the same daemon's first project's first call",
        "reference_ms": summary(first),
        "ratio": round(ratio, 2),
        "target": "≤ 1.0× the first project's",
        "met": ratio <= 1.0,
        "load": load(),
    }


def run(repetitions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "stdlib"
        copy_corpus(root)
        rows = startup_and_idle_memory(root, repetitions)
        rows.append(anyio.run(file_read_round_trips, root, 10 * repetitions))
        projects = Path(tmp) / "projects"
        projects.mkdir()
        rows.append(anyio.run(second_project_first_call, projects, max(repetitions // 3, 4)))
    return {"rows": rows}


if __name__ == "__main__":
    main(__doc__, "repetitions", 30, run)
