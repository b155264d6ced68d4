"""The daemon's /health and /status.json, and `loomkin-mcp status`: what runs, read-only, no secrets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx2
import pytest
from mcp import ClientSession

from conftest import LOOMKIN, _http_streams, http_daemon, ok, processes, server_env

pytestmark = pytest.mark.anyio

SECRET = "the file's contents must never show on the status page"


async def test_status_json_shows_what_runs_and_no_contents(project: Path) -> None:
    (project / "app.py").write_text("import os\n")
    (project / "LOOMKIN.md").write_text("## Rules\n- Keep it small.\n")
    async with http_daemon(project, "http") as url, httpx2.AsyncClient() as client:
        base = url.removesuffix("/mcp")
        health = await client.get(f"{base}/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        async with _http_streams(url) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await ok(session, "file_write", file_path="notes.txt", content=SECRET)
            await ok(session, "decision_log", node_type="goal", title="Ship the status page")
            await ok(session, "lsp_diagnostics", file_path="app.py")
            status = (await client.get(f"{base}/status.json")).json()
        assert status["project"]["root"] == str(project) and status["project"]["trusted"] is True
        assert status["project"]["rules"]["rules"] == ["Keep it small."]
        assert [row["name"] for row in status["language_servers"]] == ["pylsp"]
        assert status["language_servers"][0]["state"] == "running" and status["language_servers"][0]["pid"]
        assert status["diagnostics"]["files"]["app.py"] == {"warning": 1}
        assert status["decisions"]["active_goals"] == ["Ship the status page"]
        calls = {call["tool"]: call for call in status["tool_calls"]}
        assert (
            calls["file_write"]["ok"] and calls["file_write"]["arguments"]["content"] == f"<{len(SECRET)} characters>"
        )
        assert SECRET not in json.dumps(status)
        # One client however many requests it made (the SDK makes a session object per request).
        [seen] = status["sessions"]
        assert seen["client"] and seen["protocol_version"] == "2025-11-25" and seen["since"] > 0


async def test_status_routes_have_the_endpoints_protections(project: Path) -> None:
    async with http_daemon(project, "http", env={"LOOMKIN_TOKEN": "s3cret"}) as url, httpx2.AsyncClient() as client:
        base = url.removesuffix("/mcp")
        assert (await client.get(f"{base}/status.json")).status_code == 401
        allowed = {"Authorization": "Bearer s3cret"}
        assert (await client.get(f"{base}/status.json", headers=allowed)).status_code == 200
        # Health says only "ok": process managers ask it without the token.
        assert (await client.get(f"{base}/health")).json()["status"] == "ok"
        foreign = await client.get(f"{base}/status.json", headers=allowed | {"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        rebinding = await client.get(f"{base}/health", headers={"Host": "evil.example"})
        assert rebinding.status_code in (403, 421)


def test_status_in_a_terminal(project: Path) -> None:
    (project / "app.py").write_text("def main():\n    return 1\n")
    text = subprocess.run([LOOMKIN, "status"], cwd=project, capture_output=True, text=True, timeout=60,
                          env=server_env())  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "loomkin-mcp " in text.stdout and str(project) in text.stdout
    assert "Repo map: 1 files indexed" in text.stdout and "Decision graph: 0 nodes (sqlite)" in text.stdout
    data = json.loads(subprocess.run([LOOMKIN, "status", "--json"], cwd=project, capture_output=True, text=True,
                                     timeout=60, env=server_env()).stdout)  # fmt: skip
    assert data["repo_map"]["languages"] == {"python": 1} and data["project"]["root"] == str(project)


async def test_status_beside_a_running_daemon_shows_the_daemons_live_servers(project: Path) -> None:
    """`status` finds the daemon that serves the project (its record in the person's state dir, its pid alive)
    and shows what that daemon runs: its pylsp, not a fresh look with nothing started."""
    (project / ".loomkin.toml").write_text('[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n')
    (project / "app.py").write_text("x = 1\n")
    async with http_daemon(project, "http") as url:
        async with _http_streams(url) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            await ok(session, "lsp_diagnostics", file_path="app.py")
            shown = subprocess.run([LOOMKIN, "status", "--json"], cwd=project, capture_output=True, text=True,
                                   timeout=60, env=server_env())  # fmt: skip
            text = subprocess.run([LOOMKIN, "status"], cwd=project, capture_output=True, text=True, timeout=60,
                                  env=server_env())  # fmt: skip
            running = processes("pylsp", cwd=project)
    (server,) = json.loads(shown.stdout)["language_servers"]
    assert server["state"] == "running" and server["pid"] in running, (server, running)
    assert text.stdout.startswith("The daemon serving this project (pid "), text.stdout
    after = subprocess.run([LOOMKIN, "status"], cwd=project, capture_output=True, text=True, timeout=60,
                           env=server_env())  # fmt: skip
    assert after.stdout.startswith("No daemon serves this project now"), after.stdout


async def test_status_finds_a_daemon_without_root_once_it_serves_the_project(tmp_path: Path) -> None:
    from test_roots import client_of_daemon, make_project

    alpha, beta = make_project(tmp_path / "alpha", "alpha\n"), make_project(tmp_path / "beta", "beta\n")

    def status(root: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([LOOMKIN, "status"], cwd=root, capture_output=True, text=True, timeout=60,
                              env=server_env())  # fmt: skip

    async with http_daemon(tmp_path, "http", pinned=False) as url, client_of_daemon(url, [alpha]) as session:
        await ok(session, "file_read", file_path="README.md")
        served, other = status(alpha), status(beta)
    assert served.stdout.startswith("The daemon serving this project (pid "), served
    assert f"for {alpha}" in served.stdout, served.stdout
    assert "serves other projects and has not opened this one; this is a fresh look instead" in other.stderr
    assert other.stdout.startswith("No daemon serves this project now"), other.stdout


async def test_the_banner_prints_the_page(project: Path) -> None:
    async with http_daemon(project, "http") as url:
        base = url.removesuffix("/mcp")
    banner = (project.parent / "server-stderr.log").read_text()
    assert f"Status page: {base}/ (as JSON: /status.json" in banner, banner
