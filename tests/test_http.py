"""The HTTP daemon: Origin and token checks, binding rules, several clients sharing one process."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession

from conftest import LOOMKIN, _http_streams, http_daemon, ok, processes, server_env, text_of

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
