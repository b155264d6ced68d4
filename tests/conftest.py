"""Shared fixtures: a temporary project and a real `loomkin-mcp --stdio` subprocess behind a real client."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from loomkin_mcp._fs import proc_stat

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

# Which transport `serve` uses when a test does not say: set per test by the `transport` fixture.
TRANSPORT: ContextVar[str] = ContextVar("transport", default="stdio")
TRANSPORTS = ["stdio", "http", "sse"]


@pytest.fixture
def transport(request: pytest.FixtureRequest) -> Iterator[str]:
    """Parametrize a module with `indirect=True` to run its tests over stdio, streamable HTTP and SSE."""
    token = TRANSPORT.set(request.param)
    try:
        yield request.param
    finally:
        TRANSPORT.reset(token)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@asynccontextmanager
async def http_daemon(
    root: Path,
    transport: str,
    *args: str,
    env: dict[str, str] | None = None,
    trusted: bool = True,
    pinned: bool = True,
) -> AsyncIterator[str]:
    """`loomkin-mcp --http|--sse` on a free loopback port, started in ROOT and (when `pinned`) with `--root ROOT`;
    yields its URL; SIGTERM at the end."""
    if trusted:
        trust_project(root)
    port = free_port()
    flag = "--sse" if transport == "sse" else "--http"
    rooted = ["--root", str(root)] if pinned else []
    with open(root.parent / "server-stderr.log", "a") as errlog:
        process = subprocess.Popen(
            [LOOMKIN, flag, "--port", str(port), *rooted, *args],
            stdout=subprocess.DEVNULL, stderr=errlog, env=os.environ | server_env(env), cwd=root,
        )  # fmt: skip
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/{'sse' if transport == 'sse' else 'mcp'}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(autouse=True, scope="session")
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """HOME and XDG_CONFIG_HOME in a temporary directory: no test reads or writes the real home
    (loomkin's trust store and user-level config live under XDG_CONFIG_HOME)."""
    home = tmp_path_factory.mktemp("home")
    saved = {name: os.environ.get(name) for name in ("HOME", "XDG_CONFIG_HOME")}
    os.environ["HOME"], os.environ["XDG_CONFIG_HOME"] = str(home), str(home / ".config")
    try:
        yield home
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def trust_project(root: Path) -> None:
    """Trust what ROOT's files ask for now, as `loomkin-mcp trust --yes --root ROOT` does (same code, in-process)."""
    from loomkin_mcp.config import load_settings
    from loomkin_mcp.workspace import Workspace

    trust = Workspace(root, load_settings(root)).trust
    if not trust.trusted:
        trust.grant()


def user_config(text: str) -> Path:
    """Write the person's own config (`$XDG_CONFIG_HOME/loomkin/loomkin.toml`)."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "loomkin" / "loomkin.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


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
    private = {name: os.environ[name] for name in ("HOME", "XDG_CONFIG_HOME") if name in os.environ}
    return GIT_IDENTITY | private | (extra or {})


@asynccontextmanager
async def serve(
    root: Path,
    *args: str,
    elicitation: Elicitation | None = None,
    logging_callback: Callable[[types.LoggingMessageNotificationParams], Awaitable[None]] | None = None,
    message_handler: Callable[[Any], Awaitable[None]] | None = None,
    sampling: Callable[[Any, types.CreateMessageRequestParams], Awaitable[types.CreateMessageResult]] | None = None,
    env: dict[str, str] | None = None,
    launcher: tuple[str, ...] = (),
    trusted: bool = True,
    list_roots: Callable[[Any], Awaitable[types.ListRootsResult]] | None = None,
) -> AsyncIterator[ClientSession]:
    """`loomkin-mcp --stdio --root ROOT` as a subprocess, with an initialized ClientSession.

    Over HTTP or SSE instead when the test runs under the `transport` fixture. `launcher` runs the stdio
    server under another program (strace for the process audit). `trusted`: the person has trusted what
    the project's files ask for (its servers and shell rules) before starting it; False serves it as a
    fresh clone is served.
    """
    if trusted:
        trust_project(root)
    if TRANSPORT.get() != "stdio":
        async with http_daemon(root, TRANSPORT.get(), *args, env=env) as url, _http_streams(url) as streams:
            async with ClientSession(
                streams[0], streams[1], elicitation_callback=elicitation, logging_callback=logging_callback,
                message_handler=message_handler, sampling_callback=sampling, list_roots_callback=list_roots,
                read_timeout_seconds=60,
            ) as session:  # fmt: skip
                await session.initialize()
                yield session
        return
    command = [*launcher, LOOMKIN, "--stdio", "--root", str(root), *args]
    params = StdioServerParameters(command=command[0], args=command[1:], env=server_env(env), cwd=str(root))
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
                list_roots_callback=list_roots,
                read_timeout_seconds=60,
            ) as session:
                await session.initialize()
                yield session


@asynccontextmanager
async def _http_streams(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Any]:
    if url.endswith("/sse"):
        from mcp.client.sse import sse_client

        async with sse_client(url, headers=headers) as streams:
            yield streams
        return
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    async with (
        httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(60.0)) as client,
        streamable_http_client(url, http_client=client) as streams,
    ):
        yield streams


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

    def __init__(self, root: Path, trusted: bool = True) -> None:
        if trusted:
            trust_project(root)
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
    # A child forked but not yet exec'd still shows its parent's command line: it is not another match.
    return [pid for pid in found if _parent(pid) not in found]


def _parent(pid: int) -> int | None:
    fields = proc_stat(pid)
    return int(fields[1]) if fields is not None else None


def pid_serving(url: str) -> int:
    """The pid of the loomkin-mcp daemon started with `--port` of this URL."""
    port = url.split(":")[2].split("/")[0]
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--port" in argv and port.encode() in argv:
            return int(cmdline.parent.name)
    raise LookupError(f"no process serves {url}")


def proc_number(pid: int, name: str, key: str) -> int:
    """A number from /proc/PID/NAME: `status` VmRSS or VmHWM (kB), `io` rchar (bytes)..."""
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise LookupError(f"/proc/{pid}/{name} has no {key}")


def snapshot(*paths: Path) -> dict[str, str]:
    """Each of `paths` and everything under it (links not followed, loomkin's own `.loomkin/` left
    out): a digest of a file's content, a link's text, or what kind of entry it is."""
    state = {}
    for top in paths:
        entries = [] if top.is_dir() and not top.is_symlink() else [top]
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [name for name in dirnames if name != ".loomkin"]  # loomkin's own state may appear
            entries += [Path(dirpath) / name for name in dirnames + filenames]
        for path in entries:
            if path.is_symlink():
                state[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[str(path)] = "dir" if path.is_dir() else "other" if path.exists() else "missing"
    return state


# Figures the xdist workers handed over (the controller runs no test itself).
_FROM_WORKERS: list[Any] = []


def _figures() -> list[Any]:
    module = sys.modules.get("reliability_figures")
    return (module.FIGURES if module is not None else []) + _FROM_WORKERS


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist the figures are recorded in the workers: each hands its own to the controller.
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["reliability_figures"] = json.dumps(_figures())


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    _FROM_WORKERS.extend(json.loads(getattr(node, "workeroutput", {}).get("reliability_figures", "[]")))


_SESSION_STARTED = time.time()


def _skip_reason(report: Any) -> str:
    """A skip's reason when it is for something not installed."""
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    return reason if "not installed" in reason else ""


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Assemble the language-server matrix this run measured; print the reliability suite's figures (cases
    tried, escapes, torn files, lost nodes...)."""
    from test_language_servers import write_matrix

    if (matrix := write_matrix(_SESSION_STARTED)) is not None:
        terminalreporter.write_line(f"language-server matrix: {matrix}")
    wanting = sorted({_skip_reason(report) for report in terminalreporter.stats.get("skipped", [])} - {""})
    if wanting:
        terminalreporter.write_line(
            f"skipped for want of what is not installed here: {'; '.join(wanting)} — `make test` installs it all "
            "(system packages as root or through password-less sudo)"
        )
    figures = _figures()
    if not figures:
        return
    terminalreporter.section("reliability figures")
    for area, what, values in sorted(figures, key=lambda row: (row[0], row[1])):
        shown = ", ".join(f"{key.replace('_', ' ')}: {value}" for key, value in values.items())
        terminalreporter.write_line(f"{area}: {what} — {shown}")
