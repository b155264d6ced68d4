"""What a new user meets first: instructions never dropped unsaid, budgets kept, every missing piece named.

Each test goes through the real CLI or a real MCP session over a subprocess.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from conftest import LOOMKIN, call, ok, serve, server_env, trust_project

pytestmark = pytest.mark.anyio
PYLSP = Path(sys.executable).parent / "pylsp"

LONG_PARAGRAPH = "Background prose about the project's history. " * 160  # ≈ 7,500 characters on one line
LOOMKIN_MD = f"""# Project Instructions

Keep answers short.

## Background
{LONG_PARAGRAPH}

## Rules
- Run the tests before committing.

## Allowed Operations
- Shell: `make *`, `git status`
- File Write: `src/**`

## Style
Prefer small functions.
"""


def configure_servers(project: Path, table: str, *entries: str, settings: str = "") -> None:
    """A `.loomkin.toml` with `entries` as `[table].servers`, trusted as the person would."""
    lines = "".join(f"  {entry},\n" for entry in entries)
    (project / ".loomkin.toml").write_text(f"[{table}]\n{settings}servers = [\n{lines}]\n")
    trust_project(project)


def instruction_files(project: Path) -> None:
    (project / "LOOMKIN.md").write_text(LOOMKIN_MD)
    (project / "AGENTS.md").write_text("# Agents\nAlways run `make lint` first.\n")
    (project / "CLAUDE.md").write_text("Use British spelling in comments.\n")
    (project / ".cursorrules").write_text("Never touch generated files.\n")
    (project / ".cursor" / "rules").mkdir(parents=True)
    (project / ".cursor" / "rules" / "testing.mdc").write_text(
        "---\ndescription: tests\n---\nName tests by behaviour.\n"
    )


async def test_project_context_keeps_enforced_rules_and_says_what_it_cut(project: Path) -> None:
    instruction_files(project)
    (project / "app.py").write_text("def main():\n    return 1\n")
    async with serve(project) as session:
        small = await ok(session, "project_context", max_tokens=6000)
        # The enforced sections are whole, though the 7,500-character paragraph before them did not fit.
        assert "## Allowed Operations\n- Shell: `make *`, `git status`\n- File Write: `src/**`" in small
        assert "## Rules\n- Run the tests before committing." in small
        assert "more characters here; read all of it with file_read LOOMKIN.md or the loomkin://rules" in small
        assert 'Not shown, for lack of room: "Style"' in small
        # The convention files are named even when there is no room for them.
        for name in ("AGENTS.md", "CLAUDE.md", ".cursorrules", ".cursor/rules/testing.mdc"):
            assert f"## Instructions ({name}; guidance only" in small, name
        assert "read it with file_read AGENTS.md" in small

        roomy = await ok(session, "project_context", max_tokens=100_000)
        assert LONG_PARAGRAPH.strip() in roomy and "Prefer small functions." in roomy
        assert "Always run `make lint` first." in roomy and "Name tests by behaviour." in roomy
        assert "Use British spelling" in roomy and "Never touch generated files." in roomy
        assert "Not shown" not in roomy and "more characters here" not in roomy

        rules = (await session.read_resource("loomkin://rules")).contents[0].text
        assert "Always run `make lint` first." in rules and "Name tests by behaviour." in rules
        assert "loomkin-mcp enforces LOOMKIN.md alone" in rules
        assert "[teams]: enabled, at most 10 agents per team" in rules and "runs no agent teams" in rules
        # Guidance is not permission: AGENTS.md asked for `make lint`, LOOMKIN.md did not allow it.
        assert "Shell allowed: `make *`, `git status`" in rules


async def test_repo_map_budget_covers_the_header_too(project: Path) -> None:
    for index in range(30):
        (project / f"module_{index}.py").write_text(
            f"def function_{index}(value):\n    return helper_{index}(value)\n\n\ndef helper_{index}(value):\n"
            "    return value\n"
        )
    async with serve(project) as session:
        for budget in (64, 300, 1000):
            text = await ok(session, "repo_map", max_tokens=budget)
            assert math.ceil(len(text) / 4) <= budget, (budget, len(text))
            claimed = int(text.split("~", 1)[1].split(" ", 1)[0])
            assert claimed >= math.ceil(len(text) / 4), text.splitlines()[0]


def test_languages_without_a_server_are_named_with_the_install_command(project: Path) -> None:
    (project / "main.go").write_text("package main\n\nfunc main() {}\n")
    (project / "app.py").write_text("print('hi')\n")
    status = subprocess.run([LOOMKIN, "lsp-status"], cwd=project, capture_output=True, text=True, timeout=60,
                            env=server_env())  # fmt: skip
    assert status.returncode == 1, status.stdout + status.stderr
    assert "✔ pylsp" in status.stdout
    assert "✘ (none)" in status.stdout and "go install golang.org/x/tools/gopls@latest" in status.stdout
    rows = json.loads(
        subprocess.run(
            [LOOMKIN, "lsp-status", "--json"], cwd=project, capture_output=True, text=True, timeout=60, env=server_env()
        ).stdout  # fmt: skip
    )
    assert rows[-1]["languages"] == ["go"] and rows[-1]["ok"] is False
    assert "gopls" in rows[-1]["install"]

    doctor = subprocess.run([LOOMKIN, "doctor", "--json"], cwd=project, capture_output=True, text=True, timeout=60,
                            env=server_env())  # fmt: skip
    checks = {check["name"]: check for check in json.loads(doctor.stdout)}
    assert doctor.returncode == 1
    assert not checks["lsp for go"]["ok"] and "gopls" in checks["lsp for go"]["fix"]
    assert checks["lsp pylsp"]["ok"]
    assert "teams" not in checks  # said only to a person who set [teams]
    assert "WARNING" not in doctor.stderr, doctor.stderr


def test_doctor_names_unreachable_upstreams_and_their_fix_at_once(project: Path) -> None:
    configure_servers(
        project,
        "mcp",
        '{ name = "tidewave", command = "no-such-mix", args = ["tidewave.server"] }',
        '{ name = "hexdocs", url = "http://127.0.0.1:9/sse" }',
    )
    started = time.monotonic()
    doctor = subprocess.run([LOOMKIN, "doctor", "--json"], cwd=project, capture_output=True, text=True, timeout=60,
                            env=server_env())  # fmt: skip
    elapsed = time.monotonic() - started
    checks = {check["name"]: check for check in json.loads(doctor.stdout)}
    assert "`no-such-mix` was not found" in checks["upstream tidewave"]["detail"]
    assert "install `no-such-mix`" in checks["upstream tidewave"]["fix"]
    assert "could not be reached" in checks["upstream hexdocs"]["detail"]
    assert "start the server that listens at http://127.0.0.1:9/sse" in checks["upstream hexdocs"]["fix"]
    # Told without waiting for any connection attempt (its upstream check allows 15 s).
    assert elapsed < 15, elapsed


async def test_an_upstream_failing_the_same_way_stops_and_says_how_to_fix_it(project: Path) -> None:
    configure_servers(
        project,
        "mcp",
        f'{{ name = "clock", command = "{sys.executable}", '
        'args = ["-m", "mcp_server_time", "--local-timezone", "Nowhere/Invalid"] }',
    )
    async with serve(project) as session:
        status = ""
        deadline = time.monotonic() + 90
        while "failed" not in status and time.monotonic() < deadline:
            status = (await session.read_resource("loomkin://upstreams")).contents[0].text
            if "failed" not in status:
                await anyio.sleep(0.2)
        assert "clock" in status and ": failed," in status, status
        assert "invalid --local-timezone 'Nowhere/Invalid'" in status and "fix:" in status
        restarts = int(status.split(" restarts")[0].rsplit(" ", 1)[1])
        # Given up on: no restart while nobody asks for it (with backoff, the next would come within 4 s).
        await anyio.sleep(4.5)
        again = (await session.read_resource("loomkin://upstreams")).contents[0].text
        assert f"{restarts} restarts" in again, again

        # A call for one of its tools tries it once more, and says why it still does not work.
        result = await call(session, "clock__get_current_time", timezone="UTC")
        assert result.is_error
        message = result.content[0].text
        assert "no longer retried on its own" in message and "Nowhere/Invalid" in message, message

    done = subprocess.run([LOOMKIN, "upstream-status"], cwd=project, capture_output=True, text=True, timeout=90,
                          env=server_env())  # fmt: skip
    assert done.returncode == 1 and "✘ clock" in done.stdout and "fix:" in done.stdout, done.stdout


async def test_a_call_waits_for_an_upstream_still_connecting(project: Path) -> None:
    # A real server that takes a while to start, as `mix tidewave.server` compiling would.
    slow = f"sleep 3; exec {sys.executable} -m mcp_server_time"
    configure_servers(project, "mcp", f'{{ name = "clock", command = "sh", args = ["-c", "{slow}"] }}')
    async with serve(project) as session:
        status = (await session.read_resource("loomkin://upstreams")).contents[0].text
        assert "clock" in status and "connecting" in status, status
        answer = await ok(session, "clock__get_current_time", timezone="UTC")
        assert '"timezone": "UTC"' in answer


async def test_the_first_edit_waits_for_a_slow_language_server(project: Path) -> None:
    # pylsp behind a three-second start, longer than the diagnostics timeout (as typescript-language-server).
    configure_servers(
        project,
        "lsp",
        f'{{ name = "pylsp", command = "sh", args = ["-c", "sleep 3; exec {PYLSP}"], languages = ["python"] }}',
        settings="diagnostics_timeout_ms = 2500\n",
    )
    (project / "app.py").write_text("def greet(name):\n    return name\n\n\ngreet('world')\n")
    async with serve(project) as session:
        broken = await ok(
            session, "file_edit", file_path="app.py", old_string="greet('world')", new_string="greet(undefined_thing)"
        )
        assert "pylsp was starting: this edit waited" in broken, broken
        assert "undefined name 'undefined_thing' (pyflakes) — introduced by this edit" in broken, broken
        fixed = await ok(
            session, "file_edit", file_path="app.py", old_string="greet(undefined_thing)", new_string="greet('you')"
        )
        assert "resolved: app.py:5:7 error undefined name 'undefined_thing' (pyflakes)" in fixed, fixed
        assert "was starting" not in fixed
