"""Claude Code (npm `@anthropic-ai/claude-code`), a client we did not write: `claude mcp add` registers
loomkin-mcp over stdio and over HTTP, and `claude mcp list` connects to each (offline, no login needed).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anyio
import pytest

from conftest import LOOMKIN, http_daemon, trust_project

CLAUDE = Path(__file__).parent.parent / "node_modules" / ".bin" / "claude"


def claude(*args: str, cwd: Path) -> str:
    done = subprocess.run([str(CLAUDE), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=os.environ | {"DISABLE_AUTOUPDATER": "1"})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.anyio
@pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code is not installed (make test installs it from npm)")
async def test_claude_code_adds_and_connects_over_stdio_and_http(project: Path) -> None:
    trust_project(project)
    claude("mcp", "add", "loomkin", "--", LOOMKIN, "--stdio", cwd=project)
    claude("mcp", "add", "broken", "--", str(project / "no-such-server"), cwd=project)
    async with http_daemon(project, "http") as url:
        claude("mcp", "add", "--transport", "http", "loomkin-http", url, cwd=project)
        listed = await anyio.to_thread.run_sync(lambda: claude("mcp", "list", cwd=project))
    rows = {line.split(":", 1)[0]: line for line in listed.splitlines() if ":" in line}
    assert "✔ Connected" in rows["loomkin"] and "✔ Connected" in rows["loomkin-http"], listed
    # The check is real: a server that cannot start is not reported connected.
    assert "✔" not in rows["broken"], listed


@pytest.mark.skipif(not CLAUDE.exists(), reason="Claude Code is not installed (make test installs it from npm)")
def test_claude_code_reads_what_setup_writes_and_takes_the_snippet_with_add_json(project: Path) -> None:
    """`loomkin-mcp setup claude-code --yes` writes the project's `.mcp.json`, which Claude Code reads as a
    project server; the server object `editor-config claude-code` prints is what `claude mcp add-json` takes."""
    trust_project(project)
    written = subprocess.run([LOOMKIN, "setup", "claude-code", "--yes"], cwd=project, capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert written.returncode == 0, written.stderr
    got = claude("mcp", "get", "loomkin", cwd=project)
    assert "Project config" in got and f"Command: {LOOMKIN}" in got, got
    printed = subprocess.run([LOOMKIN, "editor-config", "claude-code"], cwd=project, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    server = json.loads(printed.stdout)["mcpServers"]["loomkin"]
    claude("mcp", "add-json", "loomkin-json", json.dumps(server), cwd=project)
    listed = claude("mcp", "list", cwd=project)
    row = next(line for line in listed.splitlines() if line.startswith("loomkin-json:"))
    assert "✔ Connected" in row, listed
