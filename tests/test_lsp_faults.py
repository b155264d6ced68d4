"""Language servers that hang, crash, babble or flood, and `kill -9` of a real one.

Every tool call returns within its timeout with a clear message, the server is restarted,
and no language-server process outlives loomkin-mcp.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import anyio
import pytest

from loomkin_mcp._fs import proc_stat

from conftest import RawServer, fails, ok, processes, serve

pytestmark = pytest.mark.anyio

FAKE = Path(__file__).with_name("fake_lsp.py")


def fake_config(root: Path, mode: str, timeout_ms: int = 1500, max_restarts: int = 5) -> None:
    (root / ".loomkin.toml").write_text(
        "[lsp]\n"
        "start_timeout_ms = 2000\n"
        f"request_timeout_ms = {timeout_ms}\n"
        f"diagnostics_timeout_ms = {timeout_ms}\n"
        f"max_restarts_per_minute = {max_restarts}\n"
        f'servers = [{{ name = "fake", command = "{sys.executable}", args = ["{FAKE}", "{mode}"], '
        'languages = ["python"] }]\n'
    )
    (root / "a.py").write_text("x = 1\n")


def servers_of(root: Path, needle: str) -> list[int]:
    """The language servers themselves: inside the sandbox, below bubblewrap's two processes."""
    return [_innermost(pid) for pid in processes(needle, cwd=root)]


def _innermost(pid: int) -> int:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    while _program(pid) == "bwrap" and children.get(pid):
        pid = children[pid][0]
    return pid


def _program(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


async def gone(root: Path, needle: str) -> bool:
    with anyio.move_on_after(5):
        while servers_of(root, needle):
            await anyio.sleep(0.05)
    return not servers_of(root, needle)


async def timed(awaitable: object) -> tuple[object, float]:
    started = time.monotonic()
    result = await awaitable  # type: ignore[misc]
    return result, time.monotonic() - started


async def test_a_server_that_never_answers_initialize(project: Path) -> None:
    fake_config(project, "hang")
    async with serve(project) as session:
        message, seconds = await timed(fails(session, "lsp_hover", file_path="a.py", line=1, column=1))
        assert "fake did not finish starting within 2 s" in message and seconds < 6
        edited = await ok(session, "file_edit", file_path="a.py", old_string="x = 1", new_string="x = 2")
        assert "Diagnostics unavailable for a.py" in edited or "fake reported no diagnostics" in edited
    assert (project / "a.py").read_text() == "x = 2\n"
    assert await gone(project, "fake_lsp.py")


async def test_a_crash_mid_request_is_reported_and_the_server_restarted(project: Path) -> None:
    fake_config(project, "crash")
    async with serve(project) as session:
        assert "fake warning" in await ok(session, "lsp_diagnostics", file_path="a.py")
        [first] = servers_of(project, "fake_lsp.py")
        message, seconds = await timed(fails(session, "lsp_definition", file_path="a.py", line=1, column=1))
        assert "fake exited with code 3" in message and "crashed on purpose" in message and seconds < 3
        # The next call restarts it, reopens the document, and works.
        assert "No definition found" in await ok(session, "lsp_definition", file_path="a.py", line=1, column=1)
        assert "fake hover" in await ok(session, "lsp_hover", file_path="a.py", line=1, column=1)
        [second] = servers_of(project, "fake_lsp.py")
        assert second != first
    assert await gone(project, "fake_lsp.py")


async def test_garbage_output_times_out_cleanly(project: Path) -> None:
    fake_config(project, "garbage")
    async with serve(project) as session:
        message, seconds = await timed(fails(session, "lsp_definition", file_path="a.py", line=1, column=1))
        assert "did not answer textDocument/definition within 1500 ms" in message and seconds < 4
        # The server is still usable for what it does right.
        assert "fake warning" in await ok(session, "lsp_diagnostics", file_path="a.py")
    assert await gone(project, "fake_lsp.py")


@pytest.mark.parametrize("mode", ["flood", "stderr"])
async def test_floods_on_stdout_or_stderr_do_not_block(project: Path, mode: str) -> None:
    # Not blocking is the point, not speed: 5,000 log messages per edit take a while to parse on a busy machine.
    fake_config(project, mode, timeout_ms=10_000)
    async with serve(project) as session:
        for n in range(3):
            edited = await ok(session, "file_write", file_path="a.py", content=f"x = {n}\n")
            assert "fake diagnostics for a.py" in edited and "fake warning" in edited
        assert "fake hover" in await ok(session, "lsp_hover", file_path="a.py", line=1, column=1)
    assert await gone(project, "fake_lsp.py")


async def test_kill_9_of_real_pylsp_then_restart(project: Path) -> None:
    (project / ".loomkin.toml").write_text('[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n')
    (project / "a.py").write_text("def f():\n    return 1\n\n\nf()\n")
    async with serve(project) as session:
        assert "a.py:1:5" in await ok(session, "lsp_definition", file_path="a.py", symbol="f", line=5)
        [pid] = servers_of(project, "bin/pylsp")
        os.kill(pid, signal.SIGKILL)
        with anyio.fail_after(20):
            # In flight or next: a clear error at worst, then the restarted server answers.
            result = await session.call_tool("lsp_definition", {"file_path": "a.py", "symbol": "f", "line": 5})
            if result.is_error:
                assert "pylsp" in result.content[0].text
            assert "a.py:1:5" in await ok(session, "lsp_definition", file_path="a.py", symbol="f", line=5)
        [new_pid] = servers_of(project, "bin/pylsp")
        assert new_pid != pid
    assert await gone(project, "bin/pylsp")


def test_kill_9_of_loomkin_takes_its_language_servers_along(project: Path) -> None:
    fake_config(project, "ok")
    server = RawServer(project)
    server.handshake()
    server.call_tool(2, "lsp_diagnostics", {"file_path": "a.py"})
    server.read_until({2})
    assert servers_of(project, "fake_lsp.py")
    server.process.kill()
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 5
    while servers_of(project, "fake_lsp.py") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert servers_of(project, "fake_lsp.py") == []


async def test_a_hung_server_is_restarted(project: Path) -> None:
    fake_config(project, "ok")
    async with serve(project) as session:
        assert "fake hover" in await ok(session, "lsp_hover", file_path="a.py", line=1, column=1)
        [pid] = servers_of(project, "fake_lsp.py")
        os.kill(pid, signal.SIGSTOP)
        for _ in range(2):
            message, seconds = await timed(fails(session, "lsp_hover", file_path="a.py", line=1, column=1))
            assert "did not answer textDocument/hover within 1500 ms" in message and seconds < 4
        assert "fake hover" in await ok(session, "lsp_hover", file_path="a.py", line=1, column=1)
        assert pid not in servers_of(project, "fake_lsp.py")
    assert await gone(project, "fake_lsp.py")
