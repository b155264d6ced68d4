"""The HTTP daemon: Origin and token checks, binding rules, several clients sharing one process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession

from conftest import (
    LOOMKIN,
    _http_streams,
    free_port,
    http_daemon,
    ok,
    processes,
    server_env,
    text_of,
    trust_project,
    wait_for_port,
)

pytestmark = pytest.mark.anyio

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def test_a_foreign_origin_is_refused(project: Path) -> None:
    async with http_daemon(project, "http") as url, httpx2.AsyncClient() as client:
        foreign = await client.post(url, json=INITIALIZE, headers=MCP_HEADERS | {"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        port = url.split(":")[2].split("/")[0]
        local = await client.post(url, json=INITIALIZE, headers=MCP_HEADERS | {"Origin": f"http://127.0.0.1:{port}"})
        assert local.status_code == 200
        rebinding = await client.post(url, json=INITIALIZE, headers=MCP_HEADERS | {"Host": "evil.example"})
        assert rebinding.status_code in (403, 421)


@pytest.mark.parametrize("transport", ["http", "sse"])
async def test_a_token_is_required_when_configured(project: Path, transport: str) -> None:
    async with http_daemon(project, transport, env={"LOOMKIN_TOKEN": "s3cret"}) as url:
        async with httpx2.AsyncClient() as client:
            method = client.post if transport == "http" else client.get
            kwargs = {"json": INITIALIZE} if transport == "http" else {}
            missing = await method(url, headers=MCP_HEADERS, **kwargs)
            wrong = await method(url, headers=MCP_HEADERS | {"Authorization": "Bearer nope"}, **kwargs)
            assert missing.status_code == 401 and wrong.status_code == 401
            assert "bearer token" in missing.json()["error"]
        async with _http_streams(url, {"Authorization": "Bearer s3cret"}) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                assert "file_read" in {tool.name for tool in (await session.list_tools()).tools}


def test_binding_beyond_loopback_needs_a_token(project: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [LOOMKIN, "--http", "--host", "0.0.0.0", "--root", str(project)],
        capture_output=True, text=True, timeout=60, env=server_env(),
    )  # fmt: skip
    assert done.returncode == 2 and "without a token" in done.stderr and "LOOMKIN_TOKEN" in done.stderr
    unreadable = subprocess.run(
        [LOOMKIN, "--http", "--token-file", str(tmp_path / "missing"), "--root", str(project)],
        capture_output=True, text=True, timeout=60, env=server_env(),
    )  # fmt: skip
    assert unreadable.returncode == 2 and "--token-file" in unreadable.stderr


async def test_two_clients_share_one_language_server(project: Path) -> None:
    (project / ".loomkin.toml").write_text('[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n')
    (project / "a.py").write_text("x = 1\n")
    (project / "b.py").write_text("y = 2\n")
    results: dict[str, str] = {}
    async with http_daemon(project, "http") as url:

        async def client(name: str, file: str, old: str, new: str) -> None:
            async with _http_streams(url) as streams, ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                results[name] = await ok(session, "file_edit", file_path=file, old_string=old, new_string=new)

        async with anyio.create_task_group() as group:
            group.start_soon(client, "first", "a.py", "x = 1", "x = undefined_a")
            group.start_soon(client, "second", "b.py", "y = 2", "y = undefined_b")
        assert len(processes("bin/pylsp", cwd=project)) == 1
    assert "undefined name 'undefined_a'" in results["first"] and "undefined_b" not in results["first"]
    assert "undefined name 'undefined_b'" in results["second"] and "undefined_a" not in results["second"]
    # SIGTERM stopped the daemon, and its language server with it.
    with anyio.fail_after(10):
        while processes("bin/pylsp", cwd=project):
            await anyio.sleep(0.05)


async def test_the_daemon_serves_sessions_one_after_another(project: Path) -> None:
    (project / "note.txt").write_text("hello\n")
    async with http_daemon(project, "http") as url:
        for _ in range(3):
            async with _http_streams(url) as streams, ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                result = await session.call_tool("file_read", {"file_path": "note.txt"})
                assert "hello" in text_of(result)


async def test_a_port_in_use_is_one_line_before_any_banner(project: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [LOOMKIN, "--http", "--port", str(port), "--root", str(project)],
            capture_output=True, text=True, timeout=60, env=server_env(),
        )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        f"loomkin-mcp: port {port} on 127.0.0.1 cannot be used (Address already in use); pass --port with a free "
        "one, or stop what listens there."
    )
    async with http_daemon(project, "http"):
        banner = (project.parent / "server-stderr.log").read_text()
    assert f"loomkin-mcp serves {project} at http://127.0.0.1:" in banner


def sse_events(text: str) -> list[dict[str, str]]:
    """The events of an SSE body: each a dict of its fields (id, event, data, retry)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
        if fields:
            events.append(fields)
    return events


async def open_session(client: httpx2.AsyncClient, url: str) -> dict[str, str]:
    opened = await client.post(url, json=INITIALIZE, headers=MCP_HEADERS)
    headers = MCP_HEADERS | {"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
    await client.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    return headers


async def test_requests_the_spec_forbids_get_its_error_codes_in_one_sentence(project: Path) -> None:
    async with http_daemon(project, "http") as url, httpx2.AsyncClient() as client:
        session = await open_session(client, url)

        async def error_of(message: dict, headers: dict[str, str] = session) -> tuple[int, int, str]:
            answer = await client.post(url, json=message, headers=headers)
            body = answer.json() if answer.headers["content-type"].startswith("application/json") else json.loads(
                next(e["data"] for e in sse_events(answer.text) if e.get("data"))
            )  # fmt: skip
            return answer.status_code, body["error"]["code"], body["error"]["message"]

        again = await error_of(INITIALIZE)
        assert again[:2] == (400, -32600) and "already initialized" in again[2]
        null_id = await error_of({"jsonrpc": "2.0", "id": None, "method": "ping"})
        assert null_id[:2] == (400, -32600) and "not null" in null_id[2]
        for odd, kind in (({"a": 1}, "an object"), (True, "a boolean"), ([1], "an array")):
            wrong_id = await error_of({"jsonrpc": "2.0", "id": odd, "method": "ping"})
            assert wrong_id == (400, -32600, f"a request's id must be a string or a number, not {kind}."), wrong_id
        listed = await error_of({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": [1, 2]})
        assert listed == (400, -32602, "params must be an object of named parameters, not a list.")
        version = await error_of({"jsonrpc": "2.0", "id": 4, "method": "ping"},
                                 session | {"MCP-Protocol-Version": "1999-01-01"})  # fmt: skip
        assert version[:2] == (400, -32600) and "2025-06-18, 2025-11-25" in version[2] and "_meta" not in version[2]
        unknown = await error_of({"jsonrpc": "2.0", "id": 5, "method": "prompts/get", "params": {"name": "nope"}})
        assert unknown == (200, -32602, "there is no prompt named 'nope'; the prompts are: project_context.")
        wrong = await error_of({"jsonrpc": "2.0", "id": 6, "method": "prompts/get",
                                "params": {"name": "project_context", "arguments": {"x": "1"}}})  # fmt: skip
        assert wrong == (200, -32602, "prompt project_context: unknown argument(s) `x`; it takes no arguments.")
        missing = await error_of({"jsonrpc": "2.0", "id": 7, "method": "resources/subscribe",
                                  "params": {"uri": "nope://x"}})  # fmt: skip
        assert missing[1:] == (-32602, "there is no resource nope://x; resources/list names those there are.")
        # The session still works after all of them.
        assert (await client.post(url, json={"jsonrpc": "2.0", "id": 8, "method": "ping"}, headers=session)).is_success


async def test_a_dropped_stream_resumes_within_its_session_only(project: Path) -> None:
    async with http_daemon(project, "http") as url, httpx2.AsyncClient() as client:
        session = await open_session(client, url)
        answer = await client.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=session)
        priming, *rest = sse_events(answer.text)
        # A priming event (an id, no data) with the reconnection delay comes first; every event has an id.
        assert priming["id"] and priming["data"] == "" and priming["retry"] == "1000"
        assert rest and all(event.get("id") for event in rest)
        # As if the stream dropped right after its priming event: a GET with Last-Event-ID replays the rest.
        async with client.stream("GET", url, headers=session | {"Last-Event-ID": priming["id"]}) as replay:
            assert replay.status_code == 200
            received = ""
            async for chunk in replay.aiter_text():
                received += chunk
                if '"id":2' in received:
                    break
        assert '"tools":' in received and rest[0]["id"] in received
        # Another session cannot replay it: event ids are unguessable and belong to their session.
        other = await open_session(client, url)
        with anyio.move_on_after(2):
            async with client.stream("GET", url, headers=other | {"Last-Event-ID": priming["id"]}) as stolen:
                async for chunk in stolen.aiter_text():
                    assert '"tools":' not in chunk


async def test_ctrl_c_stops_the_daemon_promptly_with_pages_and_clients_open(project: Path) -> None:
    """SIGINT with two status pages' feeds and an MCP client's stream open: nothing keeps the daemon waiting (the
    page's feeds end as soon as it starts to stop; they held it for uvicorn's whole 5 s grace, then died with a
    traceback), no traceback, no child left."""
    (project / "a.py").write_text("x = 1\n")
    trust_project(project)
    port = free_port()
    errlog = project.parent / "daemon-stderr.log"
    with open(errlog, "w") as err:
        daemon = subprocess.Popen([LOOMKIN, "--http", "--port", str(port), "--root", str(project)],
                                  stdout=subprocess.DEVNULL, stderr=err, env=os.environ | server_env())  # fmt: skip
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        async with httpx2.AsyncClient(timeout=30) as client, anyio.create_task_group() as group:

            async def page() -> None:
                async with client.stream("GET", f"{base}/status/events") as feed:
                    async for _ in feed.aiter_text():
                        pass

            for _ in range(2):
                group.start_soon(page)
            async with _http_streams(f"{base}/mcp") as streams, ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                await ok(session, "file_read", file_path="a.py")  # a language server starts for it
                daemon.send_signal(signal.SIGINT)
                await anyio.to_thread.run_sync(lambda: daemon.wait(timeout=30))
                group.cancel_scope.cancel()
    finally:
        if daemon.poll() is None:
            daemon.kill()
    said = errlog.read_text()
    assert "graceful shutdown exceeded" not in said and "Traceback" not in said, said[-2000:]
    assert processes("pylsp", cwd=project) == []


async def test_a_daemon_on_every_address_answers_to_the_machines_own_names(project: Path) -> None:
    """`--host 0.0.0.0` with a token: a client naming this machine by its address or name in `Host` is served
    (it got 421), and a name that is not this machine's still is not."""
    trust_project(project)
    port = free_port()
    address = socket.gethostbyname(socket.gethostname())
    with open(project.parent / "server-stderr.log", "a") as err:
        daemon = subprocess.Popen([LOOMKIN, "--http", "--host", "0.0.0.0", "--port", str(port), "--root", str(project)],
                                  stdout=subprocess.DEVNULL, stderr=err,
                                  env=os.environ | server_env({"LOOMKIN_TOKEN": "s3cret"}))  # fmt: skip
    try:
        wait_for_port(port)
        headers = {"Authorization": "Bearer s3cret"}
        async with httpx2.AsyncClient() as client:
            for name in (address, socket.gethostname()):
                named = headers | {"Host": f"{name}:{port}"}
                own = await client.get(f"http://127.0.0.1:{port}/status.json", headers=named)
                assert own.status_code == 200, (name, own.status_code, own.text[:200])
            foreign = await client.get(f"http://127.0.0.1:{port}/status.json",
                                       headers=headers | {"Host": f"evil.example:{port}"})  # fmt: skip
            assert foreign.status_code in (403, 421)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
