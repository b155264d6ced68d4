"""The MCP Inspector CLI — a client we did not write — against loomkin-mcp over stdio and HTTP."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import LOOMKIN, http_daemon, server_env

INSPECTOR = Path(__file__).parent.parent / "node_modules" / ".bin" / "mcp-inspector"


def inspect(target: list[str], *method: str, cwd: Path) -> dict:
    done = subprocess.run(
        [str(INSPECTOR), "--cli", *target, *method], capture_output=True, text=True, timeout=120, cwd=cwd,
        env=os.environ | server_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def check(target: list[str], project: Path) -> None:
    tools = inspect(target, "--method", "tools/list", cwd=project)["tools"]
    assert {"file_read", "file_edit", "shell", "repo_map"} <= {tool["name"] for tool in tools}
    read = inspect(
        target, "--method", "tools/call", "--tool-name", "file_read", "--tool-arg", "file_path=hello.txt", cwd=project
    )
    assert read["isError"] is False and "hello from the inspector" in read["content"][0]["text"]


def test_inspector_over_stdio(project: Path) -> None:
    (project / "hello.txt").write_text("hello from the inspector\n")
    # The inspector takes the leading non-dash words as the command: our flags go after `--`.
    check([LOOMKIN, "--", "--stdio", "--root", str(project)], project)


@pytest.mark.anyio
async def test_inspector_over_http(project: Path) -> None:
    (project / "hello.txt").write_text("hello from the inspector\n")
    async with http_daemon(project, "http") as url:
        import anyio

        await anyio.to_thread.run_sync(check, [url, "--transport", "http"], project)
