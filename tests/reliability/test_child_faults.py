"""Reliability: child faults over and over — every call returns within its timeout, the child
restarts, and no child outlives loomkin-mcp.

`make test` repeats each fault 5 times; `make soak` 50 times. Restarts back off (0.25 s doubling
to 4 s), so 50 faults in a row take minutes per kind: too long for CI.

Records its figures in RELIABILITY_FIGURES (printed at the end of the run by conftest).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from reliability_figures import record
from test_lsp_faults import fake_config, gone, servers_of
from test_upstream import FAKE, TIME, configure, stdio_everything, upstream_pids

from conftest import fails, ok, processes, serve, text_of

pytestmark = pytest.mark.anyio

TIMES = 50 if os.environ.get("LOOMKIN_SOAK") else 5
TIMEOUT_MS = 500
# A call may take its request timeout plus a restart; anything near this is a hang.
CALL_LIMIT_S = 10


async def test_kill_9_of_a_real_pylsp_fifty_times(project: Path) -> None:
    (project / ".loomkin.toml").write_text(
        f'[lsp]\nmax_restarts_per_minute = {TIMES * 2}\nservers = [{{ name = "pylsp", command = "pylsp" }}]\n'
    )
    (project / "a.py").write_text("def f():\n    return 1\n\n\nf()\n")
    arguments = {"file_path": "a.py", "symbol": "f", "line": 5}
    errors = 0
    async with serve(project) as session:

        async def call_into(outcome: list[types.CallToolResult]) -> None:
            outcome.append(await session.call_tool("lsp_definition", arguments))

        async def answered() -> None:
            """Calls until pylsp answers: a kill just after the last answer shows up as one clear error."""
            nonlocal errors
            with anyio.fail_after(CALL_LIMIT_S):
                while (result := await session.call_tool("lsp_definition", arguments)).is_error:
                    errors += 1
                    # One sentence: the cause, what pylsp last said on stderr (when it said anything), what happens.
                    said = text_of(result)
                    assert said.startswith("pylsp was killed by signal 9"), said
                    assert said.endswith("; it is restarted on the next call.") and "\n" not in said, said
            assert "a.py:1:5" in text_of(result)

        for n in range(TIMES):
            await answered()
            [pid] = servers_of(project, "bin/pylsp")
            outcome: list[types.CallToolResult] = []
            with anyio.fail_after(CALL_LIMIT_S):
                async with anyio.create_task_group() as group:
                    group.start_soon(call_into, outcome)
                    # Vary the moment of the kill: before the request is sent, while pylsp works, after.
                    await anyio.sleep(0.005 * (n % 6))
                    os.kill(pid, signal.SIGKILL)
            [result] = outcome
            if result.is_error:
                errors += 1
                assert text_of(result).startswith("pylsp was killed by signal 9"), text_of(result)
        await answered()
    assert await gone(project, "bin/pylsp")
    record("child faults", f"kill -9 of a real pylsp with a request in flight ×{TIMES}",
           hangs=0, clear_errors=errors, answered_anyway=TIMES - errors, orphans=0)  # fmt: skip


async def test_a_sigstopped_language_server_fifty_times(project: Path) -> None:
    fake_config(project, "ok", TIMEOUT_MS, max_restarts=TIMES * 2)
    async with serve(project) as session:
        for _ in range(TIMES):
            assert "fake hover" in await ok(session, "lsp_hover", file_path="a.py", line=1, column=1)
            [pid] = servers_of(project, "fake_lsp.py")
            os.kill(pid, signal.SIGSTOP)
            with anyio.fail_after(CALL_LIMIT_S):
                message = await fails(session, "lsp_hover", file_path="a.py", line=1, column=1)
            assert f"did not answer textDocument/hover within {TIMEOUT_MS} ms" in message
            with anyio.fail_after(CALL_LIMIT_S):
                while (await session.call_tool("lsp_hover", {"file_path": "a.py", "line": 1, "column": 1})).is_error:
                    pass
            assert pid not in servers_of(project, "fake_lsp.py")
    assert await gone(project, "fake_lsp.py")
    record("child faults", f"SIGSTOP of a language server mid-session ×{TIMES}", hangs=0, restarts=TIMES, orphans=0)


async def test_garbage_from_a_language_server_fifty_times(project: Path) -> None:
    fake_config(project, "garbage", TIMEOUT_MS, max_restarts=TIMES * 2)
    async with serve(project) as session:
        for _ in range(TIMES):
            with anyio.fail_after(CALL_LIMIT_S):
                message = await fails(session, "lsp_definition", file_path="a.py", line=1, column=1)
            assert f"did not answer textDocument/definition within {TIMEOUT_MS} ms" in message
        assert "fake warning" in await ok(session, "lsp_diagnostics", file_path="a.py")
    assert await gone(project, "fake_lsp.py")
    record("child faults", f"garbage instead of JSON-RPC from a language server ×{TIMES}", hangs=0, orphans=0)


# -- upstream MCP servers ------------------------------------------------------------------------

UPSTREAM_TIMEOUT_MS = 1000


async def _until_answered(session: ClientSession, tool: str, arguments: dict[str, object]) -> str:
    """Calls `tool` until the (restarted) upstream answers; its errors meanwhile must be clear sentences."""
    with anyio.fail_after(CALL_LIMIT_S * 3):
        while True:
            result = await session.call_tool(tool, arguments)
            if not result.is_error:
                return text_of(result)
            assert "Traceback" not in text_of(result) and "\n" not in text_of(result).strip(), text_of(result)
            await anyio.sleep(0.05)


async def test_kill_9_of_an_upstream_mid_call_fifty_times(project: Path) -> None:
    # The soak kills faster than the default 30 quick restarts a minute, after which restarts back off.
    extra = '[permissions]\nauto_approve = ["everything__*"]\n'
    configure(project, stdio_everything(), extra=extra, mcp=f"max_restarts_per_minute = {TIMES * 2}\n")
    arguments = {"duration": 30, "steps": 5}
    async with serve(project) as session:
        for n in range(TIMES):
            assert await _until_answered(session, "everything__echo", {"message": "up"}) == "Echo: up"
            [pid] = upstream_pids(project)
            outcome: list[types.CallToolResult] = []

            async def long_call(outcome: list[types.CallToolResult] = outcome) -> None:
                outcome.append(await session.call_tool("everything__trigger-long-running-operation", arguments))

            with anyio.fail_after(CALL_LIMIT_S):
                async with anyio.create_task_group() as group:
                    group.start_soon(long_call)
                    await anyio.sleep(0.1 + 0.02 * (n % 5))
                    os.kill(pid, signal.SIGKILL)
            [result] = outcome
            message = text_of(result)
            assert result.is_error and "cut short: everything was killed by signal 9" in message, message
        await _until_answered(session, "everything__echo", {"message": "back"})
    assert await gone(project, "mcp-server-everything")
    record("child faults", f"kill -9 of a real upstream MCP server (server-everything) mid-call ×{TIMES}",
           hangs=0, clear_errors=TIMES, restarts=TIMES, orphans=0)  # fmt: skip


async def test_a_sigstopped_upstream_fifty_times(project: Path) -> None:
    configure(project, f'{{ name = "time", command = "{TIME}", timeout_ms = {UPSTREAM_TIMEOUT_MS} }}')
    arguments = {"timezone": "UTC"}
    async with serve(project) as session:
        for _ in range(TIMES):
            await _until_answered(session, "time__get_current_time", arguments)
            [pid] = processes("mcp-server-time", cwd=project)
            os.kill(pid, signal.SIGSTOP)
            with anyio.fail_after(CALL_LIMIT_S):
                message = await fails(session, "time__get_current_time", **arguments)
            assert "did not answer a ping either, so it is being restarted" in message, message
            assert "2026" in await _until_answered(session, "time__get_current_time", arguments)
            assert pid not in processes("mcp-server-time", cwd=project)
    assert await gone(project, "mcp-server-time")
    record("child faults", f"SIGSTOP of a real upstream MCP server (mcp-server-time) mid-session ×{TIMES}",
           hangs=0, restarts=TIMES, orphans=0)  # fmt: skip


async def test_garbage_from_an_upstream_fifty_times(project: Path) -> None:
    state = project.parent / "upstream-state"
    state.mkdir()
    entry = f'name = "fake", command = "{sys.executable}", args = ["{FAKE}", "{state}"]'
    extra = '[permissions]\nauto_approve = ["fake__*"]\n'
    configure(project, f"{{ {entry}, timeout_ms = {UPSTREAM_TIMEOUT_MS} }}", extra=extra)
    async with serve(project) as session:
        for _ in range(TIMES):
            assert await _until_answered(session, "fake__wait", {"seconds": 0}) == "waited 0.0 s"
            with anyio.fail_after(CALL_LIMIT_S):
                message = await fails(session, "fake__babble")
            assert "did not answer a ping either, so it is being restarted" in message, message
        await _until_answered(session, "fake__wait", {"seconds": 0})
    assert await gone(project, str(FAKE))
    assert await gone(project, "itertools")
    record("child faults", f"an upstream MCP server turning into garbage on stdout mid-call ×{TIMES}",
           hangs=0, restarts=TIMES, orphans=0)  # fmt: skip
