"""Reliability: kill -9 mid-write never tears a file, garbage on stdin never stops the server, load is served.

Each test records its figures in RELIABILITY_FIGURES (printed at the end of the run by conftest).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import anyio
import pytest
from reliability_figures import record

from conftest import RawServer, _http_streams, http_daemon, ok, pid_serving, proc_number, serve

pytestmark = pytest.mark.anyio

FILES = 8
LINES = 200
OLD = "v=old\n" * LINES


def _writes(count: int) -> list[dict]:
    """file_write and file_edit calls over FILES files. Every complete version of a file is LINES equal
    lines (a write sets them all; an edit rewrites them all), so a torn file shows as unequal lines."""
    calls = []
    for n in range(count):
        name = f"f{n % FILES}.txt"
        if n % 2:
            calls.append({"name": "file_write", "arguments": {"file_path": name, "content": f"v={n}\n" * LINES}})
        else:
            edit = {"file_path": name, "old_string": "v=", "new_string": "v=x", "replace_all": True}
            calls.append({"name": "file_edit", "arguments": edit})
    return calls


def _whole(text: str) -> bool:
    lines = text.split("\n")
    return lines[-1] == "" and len(lines) == LINES + 1 and len(set(lines[:-1])) == 1 and lines[0].startswith("v=")


def test_kill_9_during_a_thousand_writes_never_tears_a_file(project: Path) -> None:
    for n in range(FILES):
        (project / f"f{n}.txt").write_text(OLD)
    (project / ".loomkin.toml").write_text('[permissions]\nauto_approve = ["*"]\n')
    calls = _writes(1000)
    sent = torn = kills = 0
    while sent < len(calls):
        server = RawServer(project)
        server.handshake()
        batch = calls[sent : sent + 125]
        for offset, call in enumerate(batch):
            server.call_tool(10_000 + offset, call["name"], call["arguments"])
        sent += len(batch)
        time.sleep(0.05 + (sent % 7) * 0.01)  # let some land, kill the rest mid-flight
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
        kills += 1
        for n in range(FILES):
            if not _whole((project / f"f{n}.txt").read_text()):
                torn += 1
    # A write killed before its rename leaves a temp file, never a torn target; the next write to
    # that file removes it.
    cleaner = RawServer(project)
    cleaner.handshake()
    for n in range(FILES):
        cleaner.call_tool(n + 1, "file_write", {"file_path": f"f{n}.txt", "content": f"v=final{n}\n" * LINES})
    cleaner.read_until(set(range(1, FILES + 1)))
    cleaner.close()
    writes = [cleaner.answered[n + 1] for n in range(FILES)]
    refused = [answer for answer in writes if answer.get("result", answer).get("isError", True)]
    assert refused == []
    leftovers = list(project.glob(".*loomkin-tmp"))
    record("crash safety", f"kill -9 ×{kills} during {sent} file_write/file_edit calls on {FILES} files",
           torn_files=torn, leftover_temp_files=len(leftovers))  # fmt: skip
    assert torn == 0 and leftovers == []


def test_kill_9_during_decision_logging_loses_no_committed_node(project: Path) -> None:
    answered: set[int] = set()
    for round_ in range(4):
        server = RawServer(project)
        server.handshake()
        for n in range(100):
            request = round_ * 1000 + n
            server.call_tool(request, "decision_log", {"node_type": "observation", "title": f"node {request}"})
        server.read_until({round_ * 1000 + n for n in range(40)})
        answered |= {
            key for key, message in server.answered.items()
            if round_ * 1000 <= key < round_ * 1000 + 100 and not message.get("result", {}).get("isError", True)
        }  # fmt: skip
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    with sqlite3.connect(project / ".loomkin" / "decisions.db") as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        titles = {row[0] for row in connection.execute("SELECT title FROM decision_nodes")}
    lost = [key for key in answered if f"node {key}" not in titles]
    record("crash safety", "kill -9 ×4 while logging decisions", acknowledged_nodes=len(answered), lost_nodes=len(lost))
    assert lost == []


# Hand-picked and hypothesis-grown messages (tests/reliability/grow_corpus.py), plus one of 2 MB.
GARBAGE = [
    *json.loads((Path(__file__).parent / "corpus" / "protocol.json").read_text()),
    '{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "file_read", "arguments": {"file_path": '
    + json.dumps("x" * 2_000_000)
    + "}}}",
]
# Ids of the checks after the garbage, out of the corpus's range.
DRAINED_ID, DROPPED_ID, FINAL_ID = 10**9, 10**9 + 1, 10**9 + 2


def test_garbage_on_stdin_gets_errors_and_the_server_keeps_serving(project: Path) -> None:
    (project / "a.txt").write_text("still here\n")
    server = RawServer(project)
    server.handshake()

    def send_garbage() -> None:
        for line in GARBAGE:
            server.send(line)
        server.send({"jsonrpc": "2.0", "id": DRAINED_ID, "method": "ping"})

    # Answers are read while the garbage goes in: a pipe is full-duplex only if both ends keep reading.
    sender = threading.Thread(target=send_garbage)
    sender.start()
    server.read_until({DRAINED_ID})
    sender.join()
    # Over the 80 MB a message may have: dropped as it streams in, not buffered, and nothing is written.
    server.call_tool(DROPPED_ID, "file_write", {"file_path": "dropped.txt", "content": "x" * (90 * 1024 * 1024)})
    server.call_tool(FINAL_ID, "file_read", {"file_path": "a.txt"})
    server.read_until({FINAL_ID})
    rest = server.close()
    for line in rest.splitlines():
        assert json.loads(line)["jsonrpc"] == "2.0"
    assert "still here" in server.answered[FINAL_ID]["result"]["content"][0]["text"]
    assert DROPPED_ID not in server.answered and not (project / "dropped.txt").exists()
    assert server.process.returncode == 0
    record("protocol fuzzing", f"{len(GARBAGE) + 1} malformed, mistyped, unknown, batched, huge (2 MB, 90 MB) and "
           "truncated messages on stdin",
           crashes=0, still_serving=1)  # fmt: skip


async def _raw_http(port: int, request: bytes) -> bytes:
    """Send bytes on a fresh connection, half-close it, and read whatever comes back."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(request)
        await stream.send_eof()
        reply = b""
        with anyio.move_on_after(30):
            async for chunk in stream:
                reply += chunk
        return reply


async def test_garbage_over_http_gets_errors_and_the_server_keeps_serving(project: Path) -> None:
    import httpx2
    import mcp

    (project / "a.txt").write_text("still here\n")
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    client_info = {"name": "fuzz", "version": "0"}
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": client_info}
    initialize = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    statuses: list[int] = []
    async with http_daemon(project, "http") as url, httpx2.AsyncClient(timeout=60) as client:
        port = int(url.split(":")[2].split("/")[0])
        session_id = (await client.post(url, headers=accept, json=initialize)).headers["mcp-session-id"]
        headers = accept | {"mcp-session-id": session_id}
        await client.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
        attempts = [
            client.post(url, headers=headers, content=body.encode("utf-8", "surrogateescape")) for body in GARBAGE
        ]
        attempts += [
            client.post(url, headers=accept | {"mcp-session-id": "no-such-session"}, json=initialize),
            client.post(url, headers={"Content-Type": "text/plain"}, content=b"hello"),
            client.post(url, headers=headers, content=b"{" * 20_000_000),
            client.put(url, headers=headers, content=b"{}"),
            client.delete(url, headers={"mcp-session-id": "no-such-session"}),
            client.get(url.replace("/mcp", "/no/such/path")),
        ]
        for attempt in attempts:
            response = await attempt
            statuses.append(response.status_code)
            assert response.status_code < 500 and "Traceback" not in response.text, response.text[:300]
        truncated = (
            b"POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
            b'{"jsonrpc": "2.0", "id": 1, "method": "tools/li'
        )
        raw_frames = [truncated, b"GARBAGE / NOT-HTTP\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b""]
        for frame in raw_frames:
            await _raw_http(port, frame)
        async with _http_streams(url) as streams, mcp.ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            assert "still here" in await ok(session, "file_read", file_path="a.txt")
    tried = len(statuses) + len(raw_frames)
    what = f"{tried} malformed, mistyped, unknown, 20 MB, truncated and non-HTTP requests on streamable HTTP"
    record("protocol fuzzing", what, server_errors_5xx=0, crashes=0, still_serving=1)


async def test_two_hundred_calls_in_flight_over_stdio_and_http(project: Path) -> None:
    for n in range(20):
        (project / f"r{n}.txt").write_text(f"file {n}\n")
    results: dict[str, list[str]] = {"stdio": [], "http": []}

    async def burst(session: object, into: list[str]) -> None:
        async with anyio.create_task_group() as group:
            for n in range(200):

                async def one(n: int = n) -> None:
                    into.append(await ok(session, "file_read", file_path=f"r{n % 20}.txt"))  # type: ignore[arg-type]

                group.start_soon(one)

    async with serve(project) as session:
        await burst(session, results["stdio"])
    async with http_daemon(project, "http") as url:
        import mcp

        async with _http_streams(url) as streams, mcp.ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await burst(session, results["http"])
    for transport, texts in results.items():
        assert len(texts) == 200, transport
        assert all(text.startswith("     1\tfile ") for text in texts), transport
    record("load", "200 file_read calls in flight over stdio, then 200 over streamable HTTP", errors=0)


# A crowd is 200 clients in this test process: 2 in `make test` (the first and one after it), 12 in `make soak`.
CROWDS = 12 if os.environ.get("LOOMKIN_SOAK") else 2


MAX_LATER_CROWDS_GROWTH_MB = 64


@pytest.mark.timeout(300)
async def test_two_hundred_concurrent_http_clients_are_served_and_released(project: Path) -> None:
    """Each client speaks the wire as an MCP client does (initialize, initialized, a call, DELETE at the end), in
    raw HTTP: the SDK's client machinery for 400 sessions cost the test more CPU than the server it measures. All
    200 sessions of a crowd are open when their calls are made."""
    import httpx2
    from test_http import open_session, sse_events

    for n in range(20):
        (project / f"r{n}.txt").write_text(f"file {n}\n")
    texts: list[str] = []

    async def read(http: httpx2.AsyncClient, session: dict[str, str], n: int) -> None:
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "file_read", "arguments": {"file_path": f"r{n % 20}.txt"}}}  # fmt: skip
        answer = await http.post(url, json=call, headers=session)
        data = answer.text if answer.headers["content-type"].startswith("application/json") else next(
            event["data"] for event in sse_events(answer.text) if event.get("data")
        )  # fmt: skip
        result = json.loads(data)["result"]
        assert not result.get("isError"), result
        texts.append(result["content"][0]["text"])

    async def crowd(size: int) -> None:
        """`size` sessions opened, all live at once when each makes its call, then each closed (DELETE)."""
        sessions: dict[int, dict[str, str]] = {}

        async def opened(http: httpx2.AsyncClient, n: int) -> None:
            sessions[n] = await open_session(http, url)

        async with httpx2.AsyncClient(timeout=60, limits=httpx2.Limits(max_connections=size)) as http:
            for step in (opened, lambda http, n: read(http, sessions[n], n),
                         lambda http, n: http.delete(url, headers=sessions[n])):  # fmt: skip
                async with anyio.create_task_group() as group:
                    for n in range(size):
                        group.start_soon(step, http, n)

    # 200 sessions live at once: above the default cap of 100, which closes the idlest (test_http_bounds.py).
    async with http_daemon(project, "http", "--max-sessions", "200") as url:
        pid = pid_serving(url)
        await crowd(1)
        baseline, baseline_fds = proc_number(pid, "status", "VmRSS"), _open_fds(pid)
        rss_after = []
        for _ in range(CROWDS):
            await crowd(200)
            rss_after.append(proc_number(pid, "status", "VmRSS"))
        # Every client has left: its connections and session go with it (the server closes its side
        # of a connection shortly after the client's).
        with anyio.move_on_after(10):
            while _open_fds(pid) > baseline_fds:
                await anyio.sleep(0.05)
        fds_left = _open_fds(pid) - baseline_fds
    assert len(texts) == 1 + 200 * CROWDS and all(text.startswith("     1\tfile ") for text in texts)
    # The first crowd's peak stays with the allocator, and later crowds wobble with scheduling (2 to 30 MB
    # seen; a 12-crowd soak stayed flat). The bound is for leaks: 110 KB kept per session would pass it.
    first_crowd = (rss_after[0] - baseline) / 1024
    later_crowds = (rss_after[-1] - rss_after[0]) / 1024
    assert later_crowds < MAX_LATER_CROWDS_GROWTH_MB, rss_after
    record("load", f"{CROWDS} × 200 concurrent streamable HTTP clients (own session each, initialize + file_read)",
           errors=0, rss_growth_first_crowd_mb=round(first_crowd, 1),
           rss_growth_over_later_crowds_mb=round(later_crowds, 1), file_descriptors_left=fds_left)  # fmt: skip
    assert fds_left <= 0


def test_rss_returns_near_baseline_after_load(project: Path) -> None:
    for n in range(20):
        (project / f"r{n}.txt").write_text(f"file {n}\n" * 100)
    server = RawServer(project)
    server.handshake()
    server.call_tool(1, "file_read", {"file_path": "r0.txt"})
    server.read_until({1})
    baseline = proc_number(server.process.pid, "status", "VmRSS")
    for round_ in range(5):
        ids = set()
        for n in range(200):
            request = 1000 * (round_ + 1) + n
            server.call_tool(request, "file_read", {"file_path": f"r{n % 20}.txt"})
            ids.add(request)
        server.read_until(ids)
    after = proc_number(server.process.pid, "status", "VmRSS")
    server.close()
    grown = (after - baseline) / 1024
    record("load", "1,000 file_read calls over stdio, RSS before and after", rss_growth_mb=round(grown, 1))
    assert grown < 20


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))
