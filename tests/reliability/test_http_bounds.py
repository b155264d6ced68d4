"""The HTTP daemon against clients that never leave: sessions never closed, connections that send nothing
or dribble their headers, and a `Host` naming the machine itself when it listens on every address."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from reliability_figures import record
from test_http import INITIALIZE, MCP_HEADERS

from conftest import http_daemon, pid_serving, proc_number

pytestmark = pytest.mark.anyio

HEADERS = MCP_HEADERS
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


async def _open_session(client: httpx2.AsyncClient, url: str) -> str:
    opened = await client.post(url, json=INITIALIZE, headers=HEADERS)
    assert opened.status_code == 200, opened.text
    return opened.headers["mcp-session-id"]


async def _alive(client: httpx2.AsyncClient, url: str, session: str) -> bool:
    answer = await client.post(
        url, json=LIST_TOOLS, headers=HEADERS | {"mcp-session-id": session, "mcp-protocol-version": "2025-11-25"}
    )
    assert answer.status_code in (200, 404), answer.text
    return answer.status_code == 200


async def test_sessions_are_capped_and_expire(project: Path) -> None:
    args = ("--max-sessions", "5", "--session-idle-timeout", "1.5")
    async with http_daemon(project, "http", *args) as url, httpx2.AsyncClient(timeout=30) as client:
        sessions = [await _open_session(client, url) for _ in range(8)]
        alive = [await _alive(client, url, session) for session in sessions]
        # The three idle longest made room for the last three; nobody was refused.
        assert alive == [False] * 3 + [True] * 5, alive
        # Any request would count as activity, so the idle timeout is waited out untouched (it is what is tested).
        await anyio.sleep(3.0)
        assert not any([await _alive(client, url, session) for session in sessions[-5:]])
        assert await _open_session(client, url)
    record("http bounds", "8 sessions opened with --max-sessions 5, then left idle past --session-idle-timeout",
           refused=0, closed_to_make_room=3, expired=True)  # fmt: skip


async def test_silent_and_slow_connections_cannot_lock_clients_out(project: Path) -> None:
    args = ("--max-connections", "40", "--header-timeout", "1")
    async with http_daemon(project, "http", *args) as url, httpx2.AsyncClient(timeout=30) as client:
        port = int(url.split(":")[2].split("/")[0])
        silent = []
        for number in range(60):
            sock = socket.create_connection(("127.0.0.1", port))
            if number % 2:
                sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a head that never ends
            silent.append(sock)
        started = time.monotonic()
        answered = None
        with anyio.fail_after(20):
            while answered is None or answered.status_code == 503:
                answered = await client.post(url, json=INITIALIZE, headers=HEADERS)
                if answered.status_code == 503:
                    await anyio.sleep(0.1)
        waited = time.monotonic() - started
        assert answered.status_code == 200
        closed = 0
        for sock in silent:
            sock.settimeout(5)
            try:
                closed += sock.recv(1) == b""
            except OSError:
                closed += 1
            sock.close()
        assert closed == len(silent)
    record("http bounds", "60 connections that send nothing or half a head, --max-connections 40, --header-timeout 1",
           closed_by_the_server=closed, served_after_seconds=round(waited, 1))  # fmt: skip


async def test_a_wildcard_daemon_answers_its_own_addresses(project: Path) -> None:
    hostname = socket.gethostname()
    address = next(info[4][0] for info in socket.getaddrinfo(hostname, None, socket.AF_INET))
    env = {"LOOMKIN_TOKEN": "s3cret"}
    async with http_daemon(project, "http", "--host", "0.0.0.0", env=env) as url:
        port = url.split(":")[2].split("/")[0]
        async with httpx2.AsyncClient(timeout=30, headers={"Authorization": "Bearer s3cret"}) as client:
            for host in ("127.0.0.1", "localhost", address, hostname):
                answer = await client.post(url, json=INITIALIZE, headers=HEADERS | {"Host": f"{host}:{port}"})
                assert answer.status_code == 200, (host, answer.status_code, answer.text)
            foreign = await client.post(url, json=INITIALIZE, headers=HEADERS | {"Host": f"evil.example:{port}"})
            assert foreign.status_code in (403, 421)


async def test_a_body_over_the_limit_is_refused_without_being_held(project: Path) -> None:
    async with http_daemon(project, "http") as url, httpx2.AsyncClient(timeout=120) as client:
        session = await _open_session(client, url)
        pid = pid_serving(url)
        before = proc_number(pid, "status", "VmRSS")

        async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse it by
            chunk = b"x" * (1 << 20)
            for _ in range(300):
                yield chunk

        headers = MCP_HEADERS | {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
        try:
            answer = await client.post(url, content=body(), headers=headers)
            status = answer.status_code
        except httpx2.HTTPError:
            status = 413  # the server may close the connection while the rest is still being sent
        grown_mb = (proc_number(pid, "status", "VmHWM") - before) / 1024
        record("http bounds", "a 300 MB chunked POST body (the limit is 80 MB)", status=status,
               peak_rss_growth_mb=round(grown_mb, 1))  # fmt: skip
        assert status == 413
        assert grown_mb < 160, grown_mb  # read up to the limit, never the whole body
        assert await _alive(client, url, session)
