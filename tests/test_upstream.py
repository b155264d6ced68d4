"""Upstream MCP servers re-exported through loomkin-mcp: real servers over stdio, SSE and HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession

from conftest import (
    LOOMKIN,
    fails,
    free_port,
    ok,
    processes,
    serve,
    server_env,
    text_of,
    trust_project,
    wait_for_port,
)

pytestmark = pytest.mark.anyio

REPO = Path(__file__).parent.parent
EVERYTHING = REPO / "node_modules" / ".bin" / "mcp-server-everything"
TIME = Path(sys.executable).parent / "mcp-server-time"
FAKE = Path(__file__).with_name("fake_upstream.py")


def configure(root: Path, *servers: str, extra: str = "", mcp: str = "") -> None:
    """`.loomkin.toml` with `extra` tables first, then [mcp] with `mcp` keys and the servers."""
    (root / ".loomkin.toml").write_text(extra + "[mcp]\n" + mcp + "servers = [\n" + ",\n".join(servers) + "\n]\n")


def stdio_everything(name: str = "everything") -> str:
    return f'{{ name = "{name}", command = "{EVERYTHING}" }}'


async def wait_for_tools(session: ClientSession, *names: str, timeout: float = 30) -> set[str]:
    with anyio.fail_after(timeout):
        while True:
            tools = {tool.name for tool in (await session.list_tools()).tools}
            if set(names) <= tools:
                return tools
            await anyio.sleep(0.1)


@pytest.fixture
def http_everything(request: pytest.FixtureRequest) -> Iterator[int]:
    """`mcp-server-everything sse|streamableHttp` on a free port of 127.0.0.1."""
    port = free_port()
    process = subprocess.Popen(
        [str(EVERYTHING), request.param],
        env=os.environ | {"PORT": str(port), "HOST": "127.0.0.1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(port)
    try:
        yield port
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def test_stdio_upstreams_are_reexported_with_their_content(project: Path) -> None:
    configure(project, stdio_everything(), f'{{ name = "time", command = "{TIME}" }}')
    changes: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changes.append("tools")

    async with serve(project, message_handler=on_message) as session:
        assert session.initialize_result.capabilities.tools.list_changed is True
        tools = await wait_for_tools(session, "everything__echo", "time__get_current_time")
        assert {"file_read", "everything__get-structured-content", "everything__get-tiny-image"} <= tools
        assert "tools" in changes

        assert await ok(session, "everything__echo", message="hello upstream") == "Echo: hello upstream"

        listed = {tool.name: tool for tool in (await session.list_tools()).tools}
        structured_tool = listed["everything__get-structured-content"]
        assert structured_tool.output_schema is not None
        structured = await session.call_tool("everything__get-structured-content", {"location": "New York"})
        assert not structured.is_error and set(structured.structured_content) >= {"temperature", "conditions"}

        image = await session.call_tool("everything__get-tiny-image", {})
        assert any(isinstance(block, types.ImageContent) for block in image.content)

        now = await session.call_tool("time__get_current_time", {"timezone": "UTC"})
        assert not now.is_error and now.structured_content["timezone"] == "UTC"

        resources = (await session.list_resources()).resources
        upstream_resource = next(r for r in resources if not str(r.uri).startswith("loomkin://"))
        read = await session.read_resource(upstream_resource.uri)
        assert read.contents

        prompts = {prompt.name for prompt in (await session.list_prompts()).prompts}
        assert "everything__simple-prompt" in prompts
        prompt = await session.get_prompt("everything__simple-prompt")
        assert prompt.messages

        status = (await session.read_resource("loomkin://upstreams")).contents[0].text
        assert "everything" in status and "ready via stdio" in status and "time" in status


async def test_progress_streams_and_cancellation_reaches_the_upstream(project: Path) -> None:
    state = project.parent / "upstream-state"
    state.mkdir()
    configure(
        project,
        stdio_everything(),
        f'{{ name = "fake", command = "{sys.executable}", args = ["{FAKE}", "{state}"] }}',
        extra='[permissions]\nauto_approve = ["fake__*", "everything__*"]\n',
    )
    async with serve(project) as session:
        await wait_for_tools(session, "everything__trigger-long-running-operation", "fake__wait")
        progress: list[tuple[float, float | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total))

        result = await session.call_tool(
            "everything__trigger-long-running-operation", {"duration": 1, "steps": 4}, progress_callback=on_progress
        )
        assert not result.is_error and "completed" in text_of(result)
        assert len(progress) >= 3 and progress[-1] == (4.0, 4.0)

        with anyio.move_on_after(1):
            await session.call_tool("fake__wait", {"seconds": 60})
        with anyio.fail_after(10):
            while not (state / "cancelled").exists():
                await anyio.sleep(0.05)
        # The upstream is still there and answers.
        assert await ok(session, "fake__wait", seconds=0) == "waited 0.0 s"


async def test_upstream_tools_that_change_things_ask_first(project: Path) -> None:
    configure(project, stdio_everything())
    asked: list[str] = []

    async def decline(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="decline")

    async with serve(project, elicitation=decline) as session:
        await wait_for_tools(session, "everything__gzip-file-as-resource")
        message = await fails(session, "everything__gzip-file-as-resource", name="x.gz", data="aGVsbG8=")
        assert "declined by the person" in message
        assert asked == ["Allow everything__gzip-file-as-resource to call gzip-file-as-resource on everything?"]
        await ok(session, "everything__echo", message="read-only tools are not asked about")
        assert len(asked) == 1


@pytest.mark.parametrize(
    ("http_everything", "path", "transport"),
    [("sse", "/sse", "sse"), ("streamableHttp", "/mcp", "streamable-http")],
    indirect=["http_everything"],
)
async def test_url_upstreams_over_sse_and_streamable_http(
    project: Path, http_everything: int, path: str, transport: str
) -> None:
    configure(project, f'{{ name = "remote", url = "http://127.0.0.1:{http_everything}{path}" }}')
    async with serve(project) as session:
        await wait_for_tools(session, "remote__echo")
        assert await ok(session, "remote__echo", message="over http") == "Echo: over http"
        status = (await session.read_resource("loomkin://upstreams")).contents[0].text
        assert f"ready via {transport}" in status


async def test_broken_entries_are_reported_once_and_the_rest_work(project: Path) -> None:
    configure(
        project,
        '{ name = "ghost", command = "no-such-mcp-server" }',
        f'{{ name = "nowhere", url = "http://127.0.0.1:{free_port()}/mcp" }}',
        stdio_everything(),
    )
    async with serve(project) as session:
        await wait_for_tools(session, "everything__echo")
        assert "`no-such-mcp-server` was not found" in await fails(session, "ghost__anything")
        with anyio.fail_after(30):
            while "could not be reached" not in (message := await fails(session, "nowhere__echo")):
                await anyio.sleep(0.2)
        assert "nowhere at http://127.0.0.1:" in message
        await ok(session, "everything__echo", message="still fine")


def upstream_pids(root: Path) -> list[int]:
    return processes("mcp-server-everything", cwd=root)


def test_upstream_status_command(project: Path) -> None:
    configure(project, stdio_everything(), '{ name = "ghost", command = "no-such-mcp-server" }')
    trust_project(project)
    done = subprocess.run(
        [LOOMKIN, "upstream-status"], cwd=project, capture_output=True, text=True, timeout=60, env=server_env()
    )
    assert done.returncode == 1
    assert "✔ everything" in done.stdout and "tools" in done.stdout
    assert "✘ ghost" in done.stdout and "was not found" in done.stdout


async def test_a_url_not_ending_in_sse_falls_back_from_http_to_sse(project: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(FAKE), str(project.parent), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        configure(project, f'{{ name = "legacy", url = "http://127.0.0.1:{port}/events" }}')
        async with serve(project) as session:
            await wait_for_tools(session, "legacy__wait")
            assert await ok(session, "legacy__wait", seconds=0) == "waited 0.0 s"
            assert "ready via sse" in (await session.read_resource("loomkin://upstreams")).contents[0].text
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def test_an_upstreams_sampling_elicitation_and_roots_reach_the_editor(project: Path, tmp_path: Path) -> None:
    configure(project, stdio_everything(), extra='[permissions]\nauto_approve = ["everything__*"]\n\n')
    editor_root = tmp_path / "the-editors-workspace"

    async def sample(context: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked = params.messages[0].content.text
        return types.CreateMessageResult(role="assistant", model="the-editors-model",
                                         content=types.TextContent(type="text", text=f"sampled: {asked}"))  # fmt: skip

    asked: list[str] = []

    async def elicit(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"name": "Ada", "check": True, "color": "red"})

    async def roots(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=editor_root.as_uri(), name="workspace")])

    async with serve(project, sampling=sample, elicitation=elicit, list_roots=roots) as session:
        await wait_for_tools(session, "everything__trigger-sampling-request", "everything__get-roots-list")
        sampled = await ok(session, "everything__trigger-sampling-request", prompt="the question", maxTokens=20)
        assert "sampled: Resource trigger-sampling-request context: the question" in sampled, sampled
        assert "the-editors-model" in sampled
        elicited = await ok(session, "everything__trigger-elicitation-request")
        assert "Ada" in elicited and "accept" in elicited, elicited
        # The person sees who asks: an upstream cannot pass for loomkin's own prompts.
        assert asked == ["everything asks: Please provide inputs for the following fields:"], asked
        listed = await ok(session, "everything__get-roots-list")
        assert editor_root.as_uri() in listed, listed

        # Its resource templates are listed, and a URI they name is read through them.
        templates = (await session.list_resource_templates()).resource_templates
        text_template = next(t.uri_template for t in templates if t.uri_template.endswith("/text/{resourceId}"))
        read = await session.read_resource(text_template.replace("{resourceId}", "7"))
        assert "7" in read.contents[0].text, read

    # An editor without those capabilities: sampling is declined with a reason, roots are loomkin's project.
    async with serve(project) as session:
        await wait_for_tools(session, "everything__trigger-sampling-request", "everything__get-roots-list")
        declined = await session.call_tool("everything__trigger-sampling-request", {"prompt": "x", "maxTokens": 5})
        assert "the editor does not offer sampling" in text_of(declined), text_of(declined)
        assert project.as_uri() in await ok(session, "everything__get-roots-list")


def test_a_program_refused_on_an_unreadable_path_entry_is_reported_as_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-root user whose PATH still names a directory they may not read gets EACCES from execvp for a program
    that exists nowhere (seen running `make test` as such a user); it is "not found", as for everyone else. Root
    reads every directory, so the error execvp gives is made here."""
    from loomkin_lsp_client import program_missing

    monkeypatch.setenv("PATH", str(tmp_path))
    refused = PermissionError(13, "Permission denied")
    assert program_missing("no-such-mcp-server", refused)
    present = tmp_path / "present-server"
    present.write_text("#!/bin/sh\n")
    present.chmod(0o755)
    assert not program_missing("present-server", refused)  # there but refused: "not executable"
    assert not program_missing("./local-server", refused)  # a path is run as named, never searched
    assert program_missing("anything", FileNotFoundError(2, "No such file or directory"))


class Wire:
    """`loomkin-mcp --stdio` spoken to in JSON-RPC lines, as an editor does: the answers exactly as written."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        self._next_id = 100
        self.notices: list[dict[str, Any]] = []
        self.answers: dict[Any, dict[str, Any]] = {}
        self._buffer = b""

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(message).encode() + b"\n")

    async def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            self._buffer += await self.process.stdout.receive()
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    async def until(self, request_id: Any) -> dict[str, Any]:
        """Messages until the answer to `request_id`; the server's own requests are answered on the way."""
        with anyio.fail_after(30):
            while request_id not in self.answers:
                message = await self._read()
                if "method" not in message:
                    self.answers[message["id"]] = message
                elif "id" not in message:
                    self.notices.append(message)
                elif message["method"] == "sampling/createMessage":
                    reply = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "wire"}
                    await self.send({"jsonrpc": "2.0", "id": message["id"], "result": reply})
                else:
                    await self.send({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no"}})
        return self.answers.pop(request_id)

    async def request(self, method: str, params: dict[str, Any], meta: dict[str, Any] | None = None) -> Any:
        self._next_id += 1
        request_id = self._next_id
        await self.send(
            {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params | ({"_meta": meta} if meta else {})}
        )
        return request_id

    async def call(self, name: str, arguments: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        """The whole answer to a tools/call, its id left out."""
        answer = await self.until(await self.request("tools/call", {"name": name, "arguments": arguments},
                                                     {"progressToken": token} if token else None))  # fmt: skip
        return {key: value for key, value in answer.items() if key != "id"}


async def test_read_only_upstream_calls_are_relayed_and_answer_as_the_sdk_path_does(project: Path) -> None:
    """A read-only upstream tool, once called through the SDK, is relayed as JSON-RPC lines: every answer —
    results, the upstream's errors, wrong arguments, a timeout, a sampling request on the way, progress —
    is what the SDK path wrote for the same call; a cancellation reaches the upstream and is never answered."""
    state = project.parent / "upstream-state"
    state.mkdir()
    configure(
        project,
        stdio_everything(),
        f'{{ name = "fake", command = "{sys.executable}", args = ["{FAKE}", "{state}"], timeout_ms = 1500 }}',
    )
    trust_project(project)
    errlog = project.parent / "relay-stderr.log"
    with open(errlog, "w") as err:
        process = await anyio.open_process([LOOMKIN, "--stdio", "--root", str(project), "--log-level", "debug"],
                                           stderr=err, env=os.environ | server_env())  # fmt: skip
    async with process:
        wire = Wire(process)
        hello = {"protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
                 "clientInfo": {"name": "wire", "version": "0"}}  # fmt: skip
        await wire.until(await wire.request("initialize", hello))
        await wire.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        with anyio.fail_after(30):
            while True:
                listed = await wire.until(await wire.request("tools/list", {}))
                names = {tool["name"] for tool in listed["result"]["tools"]}
                if {"everything__echo", "fake__count"} <= names:
                    break
                await anyio.sleep(0.1)

        # Relayed once called: the upstream sees the relay's own request id instead of the SDK session's.
        first = await wire.call("fake__request_id", {})
        second = await wire.call("fake__request_id", {})
        assert json.loads(first["result"]["content"][0]["text"]) != json.loads(second["result"]["content"][0]["text"])
        assert second["result"]["content"][0]["text"].startswith('"lkrelay-')

        cases: list[tuple[str, dict[str, Any], str | None]] = [
            ("everything__echo", {"message": "hello"}, None),
            ("everything__echo", {"message": "ünï ✓ \u202e\nline two " + "x" * 100_000}, None),
            ("everything__echo", {}, None),
            ("everything__echo", {"message": 5}, None),
            ("everything__echo", {"message": "a", "extra": True}, None),
            ("everything__get-sum", {"a": 2, "b": 3.5}, None),
            ("everything__get-tiny-image", {}, None),
            ("everything__get-annotated-message", {"messageType": "error", "includeImage": True}, None),
            ("everything__get-resource-links", {"count": 3}, None),
            ("fake__ask", {}, None),
            ("fake__count", {"steps": 3, "seconds": 0.01}, "tok-1"),
            ("fake__count", {"steps": 1, "seconds": 5}, None),  # past its 1.5 s timeout
        ]
        for name, arguments, token in cases:
            await wire.send({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})  # the SDK path again
            wire.notices.clear()
            through_sdk = await wire.call(name, arguments, token)
            told_by_sdk, wire.notices = wire.notices, []
            relayed = await wire.call(name, arguments, token)
            assert relayed == through_sdk, name
            progress = [notice["params"] for notice in wire.notices if notice["method"] == "notifications/progress"]
            assert progress == [n["params"] for n in told_by_sdk if n["method"] == "notifications/progress"], name
            assert all(params["progressToken"] == token for params in progress)
        assert "did not answer within 1.5 s" in relayed["result"]["content"][0]["text"]
        said = errlog.read_text()
        assert all(f"relayed {name}" in said for name, _, _ in cases)

        # A cancelled relayed call reaches the upstream, which stops; nothing answers it.
        long_count = {"name": "fake__count", "arguments": {"steps": 200, "seconds": 0.05}}
        counting = await wire.request("tools/call", long_count, {"progressToken": "tok-2"})
        with anyio.fail_after(10):
            while not any(notice["params"].get("progressToken") == "tok-2" for notice in wire.notices):
                await wire.until(await wire.request("ping", {}))
        await wire.send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": counting}})
        with anyio.fail_after(10):
            while not (state / "cancelled").exists():
                await anyio.sleep(0.05)
        await wire.until(await wire.request("ping", {}))
        assert counting not in wire.answers
        assert process.stdin is not None
        await process.stdin.aclose()
