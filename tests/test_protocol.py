"""The MCP surface: handshake, instructions, tool annotations, resources, logging, stdout purity."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from conftest import LOOMKIN, RawServer, fails, ok, serve, server_env, text_of, write_rules

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "file_read",
    "file_write",
    "file_edit",
    "directory_list",
    "file_search",
    "content_search",
    "shell",
    "git",
    "lsp_diagnostics",
    "lsp_definition",
    "lsp_references",
    "lsp_hover",
    "lsp_symbols",
    "lsp_rename",
    "repo_map",
    "project_context",
    "decision_log",
    "decision_query",
    "decision_link",
    "decision_update",
    "symbol_overview",
    "symbol_find",
    "symbol_references",
    "symbol_replace_body",
    "symbol_insert_before",
    "symbol_insert_after",
}


async def test_initialize_serves_instructions_tools_and_rules(project: Path) -> None:
    write_rules(
        project,
        "# Project Instructions\n\nUse tabs.\n\n## Rules\n- Run tests first\n\n"
        "## Allowed Operations\n- Shell: `mix *`\n",
    )
    async with serve(project) as session:
        init = session.initialize_result
        assert init is not None and init.server_info.name == "loomkin"
        assert "Use tabs." in (init.instructions or "") and "Run tests first" in (init.instructions or "")

        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == EXPECTED_TOOLS
        for tool in tools.values():
            hints = tool.annotations
            assert hints is not None and None not in (
                hints.read_only_hint,
                hints.destructive_hint,
                hints.idempotent_hint,
                hints.open_world_hint,
            ), tool.name
            assert tool.description
            assert "approval" not in json.dumps(tool.input_schema), "resolver parameters must stay hidden"
        assert tools["file_read"].annotations.read_only_hint is True
        assert tools["file_write"].annotations.destructive_hint is True
        assert tools["file_read"].input_schema["required"] == ["file_path"]
        assert set(tools["git"].input_schema["properties"]) == {"operation", "args"}

        resources = {str(resource.uri) for resource in (await session.list_resources()).resources}
        assert {"loomkin://rules", "loomkin://diagnostics", "loomkin://decisions"} <= resources
        rules = await session.read_resource("loomkin://rules")
        text = rules.contents[0].text
        assert "Run tests first" in text and "`mix *`" in text and "Enforced by loomkin-mcp" in text

        # LOOMKIN.md is re-read when it changes.
        write_rules(project, "## Allowed Operations\n- Shell: `make *`\n")
        assert "`make *`" in (await session.read_resource("loomkin://rules")).contents[0].text


async def test_modern_protocol_client_works_too(project: Path) -> None:
    (project / "a.txt").write_text("hello\n")
    params = StdioServerParameters(command=LOOMKIN, args=["--stdio", "--root", str(project)], env=server_env())
    async with Client(params) as client:
        assert client.session.protocol_version == "2026-07-28"
        result = await client.call_tool("file_read", {"file_path": "a.txt"})
        assert "hello" in text_of(result)
        bad = await client.call_tool("file_read", {"file_path": "../x"})
        assert bad.is_error and "outside the project" in text_of(bad)


async def test_bad_arguments_are_one_sentence_errors(project: Path) -> None:
    async with serve(project) as session:
        assert "missing required argument `file_path`" in await fails(session, "file_read")
        assert "`limit`" in await fails(session, "file_read", file_path="a", limit="many")
        assert "`content`" in await fails(session, "file_write", file_path="a.txt", content=["not", "text"])
        assert "no tool named 'rm'" in await fails(session, "rm", path="/")
        assert "`operation`" in await fails(session, "git", operation=7)


async def test_logs_reach_the_client_as_notifications(project: Path) -> None:
    (project / ".loomkin.toml").write_text("[permissions]\nauto_aprove = []\n")
    received: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(params)

    async with serve(project, logging_callback=on_log) as session:
        await ok(session, "file_write", file_path="a.txt", content="x\n")
        with anyio.fail_after(10):
            while not any("created a.txt" in str(p.data) for p in received):
                await anyio.sleep(0.02)
        # The start-up warning about the misspelt key is replayed once a client is there.
        assert any("auto_aprove" in str(p.data) and p.level == "warning" for p in received)


def test_stdout_carries_nothing_but_json_rpc(project: Path) -> None:
    write_rules(project, f"## Allowed Operations\n- Shell: `{sys.executable} *`\n")
    (project / "a.txt").write_text("hello\n")
    server = RawServer(project)
    try:
        server.handshake()
        server.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        server.call_tool(3, "shell", {"command": f"{sys.executable} -c \"print('to stdout')\""})
        server.call_tool(4, "file_read", {"file_path": "../../etc/passwd"})
        server.call_tool(5, "nope", {})
        server.send({"jsonrpc": "2.0", "id": 6, "method": "no/such/method"})
        server.call_tool(7, "file_write", {"file_path": "b.txt", "content": "x"})
        server.read_until({2, 3, 4, 5, 6, 7})
        # Garbage on stdin gets at most an error, and the server keeps serving.
        server.send("this is not json")
        server.send({"jsonrpc": "2.0", "id": 8, "method": "tools/list"})
        server.read_until({8})
    finally:
        rest = server.close()
    for line in rest.splitlines():
        assert json.loads(line).get("jsonrpc") == "2.0", line
    answered = server.answered
    assert "to stdout" in answered[3]["result"]["content"][0]["text"]
    assert answered[4]["result"]["isError"] is True
    assert "error" in answered[6]
    assert (project / "b.txt").read_text() == "x"


def test_answers_larger_than_the_pipe_arrive_whole_while_the_editor_is_slow_to_read(project: Path) -> None:
    """Answers are written on the event loop, without blocking: an editor that does not read for a while holds up
    neither the requests it sends meanwhile nor any answer's bytes, which all arrive whole and in order."""
    lines = [f"{n:05d} " + "x" * 90 for n in range(1500)]  # ~145 KB an answer, over twice a pipe's buffer
    (project / "big.txt").write_text("\n".join(lines) + "\n")
    server = RawServer(project)
    try:
        server.handshake()
        for request_id in range(10, 16):
            server.call_tool(request_id, "file_read", {"file_path": "big.txt"})
        time.sleep(0.3)  # not reading: the server's writes find the pipe full (~870 KB into 64 KB)
        server.send({"jsonrpc": "2.0", "id": 20, "method": "tools/list"})
        server.read_until({*range(10, 16), 20})
    finally:
        server.close()
    for request_id in range(10, 16):
        text = server.answered[request_id]["result"]["content"][0]["text"]
        assert [line.split("\t", 1)[-1].split("│", 1)[-1].strip() for line in text.splitlines()[:1500]] == lines
    assert "tools" in server.answered[20]["result"]


def test_stray_output_misses_the_wire(tmp_path: Path) -> None:
    """While serving, fd 1 points at stderr: what a library prints or a child inherits never reaches the editor."""
    script = tmp_path / "stray.py"
    script.write_text(
        "import anyio, os, sys\n"
        "from loomkin_mcp.transports._stdio import _protocol_stdout\n"
        "async def main():\n"
        "    with _protocol_stdout() as wire:\n"
        "        print('stray print', flush=True)\n"
        "        os.write(1, b'stray write\\n')\n"
        '        await wire.write(\'{"jsonrpc": "2.0"}\\n\')\n'
        "    print('after serving', flush=True)\n"
        "anyio.run(main)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout == '{"jsonrpc": "2.0"}\nafter serving\n'
    assert "stray print" in done.stderr and "stray write" in done.stderr


async def test_a_call_before_any_listing_builds_its_own_tools_and_the_list_keeps_its_order(project: Path) -> None:
    """A client may call a tool it never listed: only that tool's domain is built for the call, and `tools/list`
    afterwards gives every tool in the order it always has."""
    from loomkin_mcp.server._server import TOOL_ORDER

    (project / "app.py").write_text("def handle(request):\n    return request\n")
    async with serve(project) as session:
        assert "def handle" in await ok(session, "repo_map")
        names = [tool.name for tool in (await session.list_tools()).tools]
    assert names == sorted(TOOL_ORDER, key=TOOL_ORDER.__getitem__), names
