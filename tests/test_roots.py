"""An editor that starts loomkin-mcp in / without --root (as Claude Desktop does) and declares roots gets
its first root served; one that declares none gets the refusal as the answer to its initialize."""

from __future__ import annotations

from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from conftest import LOOMKIN, ok, serve, server_env, trust_project

pytestmark = pytest.mark.anyio


def started_in_slash(*args: str) -> StdioServerParameters:
    return StdioServerParameters(command=LOOMKIN, args=["--stdio", *args], env=server_env(), cwd="/")


async def test_the_editors_first_root_is_served(project: Path, tmp_path: Path) -> None:
    (project / "README.md").write_text("the editor's project\n")
    other = tmp_path / "second-root"
    other.mkdir()
    trust_project(project)
    logged: list[str] = []

    async def roots(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=project.as_uri()), types.Root(uri=other.as_uri())])

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(str(params.data))

    async with stdio_client(started_in_slash()) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots, logging_callback=on_log) as session:
            result = await session.initialize()
            assert result.server_info.name == "loomkin"
            assert "the editor's project" in await ok(session, "file_read", file_path="README.md")
            assert "file_edit" in {tool.name for tool in (await session.list_tools()).tools}
            rules = (await session.read_resource("loomkin://rules")).contents[0].text
            assert "No LOOMKIN.md in this project" in rules
            with anyio.fail_after(10):
                while not any(f"serving {project}, the editor's first root of 2" in line for line in logged):
                    await anyio.sleep(0.05)
            # A later change of roots is answered, not ignored: one process serves one project.
            await session.send_roots_list_changed()
            with anyio.fail_after(10):
                while not any(f"keeps serving {project} until it is restarted" in line for line in logged):
                    await anyio.sleep(0.05)


async def test_the_answer_to_initialize_is_the_same_as_a_rooted_start(project: Path) -> None:
    async def roots(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=project.as_uri())])

    async with stdio_client(started_in_slash()) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots) as session:
            rootless = await session.initialize()
    async with serve(project) as session:
        rooted = session.initialize_result
    assert rootless.capabilities == rooted.capabilities and rootless.protocol_version == rooted.protocol_version


async def test_without_roots_the_refusal_is_the_answer(tmp_path: Path) -> None:
    async with stdio_client(started_in_slash()) as (read, write):
        async with ClientSession(read, write) as session:
            with pytest.raises(MCPError) as refused:
                await session.initialize()
    assert "without --root and your editor declares no roots" in str(refused.value)
    assert "pass --root" in str(refused.value)


async def test_root_still_wins_over_the_editors_roots(project: Path, tmp_path: Path) -> None:
    (project / "README.md").write_text("named by --root\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "README.md").write_text("the editor's root\n")

    async def roots(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=elsewhere.as_uri())])

    async with stdio_client(started_in_slash("--root", str(project))) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots) as session:
            await session.initialize()
            assert "named by --root" in await ok(session, "file_read", file_path="README.md")
