"""Shared fixtures: a temporary project and a real `loomkin-mcp --stdio` subprocess behind a real client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

LOOMKIN = str(Path(sys.executable).parent / "loomkin-mcp")
DATA = Path(__file__).parent / "data"

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Loomkin Test",
    "GIT_AUTHOR_EMAIL": "test@loomkin.invalid",
    "GIT_COMMITTER_NAME": "Loomkin Test",
    "GIT_COMMITTER_EMAIL": "test@loomkin.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}

Elicitation = Callable[[Any, types.ElicitRequestParams], Awaitable[types.ElicitResult]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory inside tmp_path (so tmp_path itself is 'outside')."""
    root = tmp_path / "proj"
    root.mkdir()
    return root


def write_rules(root: Path, body: str) -> None:
    (root / "LOOMKIN.md").write_text(body, encoding="utf-8")


def git_init(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=os.environ | GIT_IDENTITY)


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return GIT_IDENTITY | {"HOME": os.environ.get("HOME", "/tmp")} | (extra or {})


@asynccontextmanager
async def serve(
    root: Path,
    *args: str,
    elicitation: Elicitation | None = None,
    logging_callback: Callable[[types.LoggingMessageNotificationParams], Awaitable[None]] | None = None,
    message_handler: Callable[[Any], Awaitable[None]] | None = None,
    sampling: Callable[[Any, types.CreateMessageRequestParams], Awaitable[types.CreateMessageResult]] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[ClientSession]:
    """`loomkin-mcp --stdio --root ROOT` as a subprocess, with an initialized ClientSession."""
    params = StdioServerParameters(
        command=LOOMKIN, args=["--stdio", "--root", str(root), *args], env=server_env(env), cwd=str(root)
    )
    # Outside the project, so it never shows up in listings; read it when a test fails.
    with open(root.parent / "server-stderr.log", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(
                read,
                write,
                elicitation_callback=elicitation,
                logging_callback=logging_callback,
                message_handler=message_handler,
                sampling_callback=sampling,
                read_timeout_seconds=60,
            ) as session:
                await session.initialize()
                yield session


def text_of(result: types.CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def call(session: ClientSession, tool: str, **arguments: Any) -> types.CallToolResult:
    return await session.call_tool(tool, arguments)


async def ok(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await call(session, tool, **arguments)
    assert not result.is_error, text_of(result)
    return text_of(result)


async def fails(session: ClientSession, tool: str, **arguments: Any) -> str:
    """The error text of a call that must fail as a tool result: one sentence, no traceback."""
    result = await call(session, tool, **arguments)
    text = text_of(result)
    assert result.is_error, f"{tool}({arguments!r}) should have failed but returned: {text[:300]}"
    assert "Traceback" not in text and "\n" not in text.strip(), text
    return text


class RawServer:
    """`loomkin-mcp --stdio` driven with hand-written JSON-RPC lines, to check the wire itself."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [LOOMKIN, "--stdio", "--root", str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=server_env(),
        )
        self.answered: dict[int, dict[str, Any]] = {}

    def send(self, message: dict[str, Any] | str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        self.process.stdin.flush()

    def call_tool(self, request_id: int, name: str, arguments: dict[str, Any]) -> None:
        self.send(
            {
                "jsonrpc": "2.0",
                "id": request_id,
                "method": "tools/call",
                "params": {"name": name, "arguments": arguments},
            }
        )

    def handshake(self) -> None:
        self.send(
            {
                "jsonrpc": "2.0",
                "id": 0,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        self.read_until({0})

    def read_until(self, ids: set[int]) -> None:
        """Read stdout until every id in `ids` is answered; every line must be JSON-RPC."""
        assert self.process.stdout is not None
        while not ids <= set(self.answered):
            line = self.process.stdout.readline()
            assert line, "the server closed stdout early"
            message = json.loads(line)
            assert message.get("jsonrpc") == "2.0", line
            if "id" in message:
                self.answered[message["id"]] = message

    def close(self) -> str:
        """Close stdin, wait for the exit, and return what stdout still held."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        rest = self.process.stdout.read()
        self.process.wait(timeout=30)
        return rest


def processes(needle: str, cwd: Path | None = None) -> list[int]:
    """Pids whose command line contains `needle` (and that run in `cwd`, when given)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            where = os.readlink(f"/proc/{pid}/cwd") if cwd is not None else None
        except OSError:
            continue
        if needle.encode() in cmdline and (cwd is None or where == str(cwd)):
            found.append(int(pid))
    return found
