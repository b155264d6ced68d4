"""The LSP bridge against real language servers (pylsp and clangd), through a real MCP client."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from conftest import LOOMKIN, fails, ok, serve, server_env, trust_project

pytestmark = pytest.mark.anyio

PYLSP_CONFIG = '[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n'


def python_project(root: Path) -> None:
    (root / ".loomkin.toml").write_text(PYLSP_CONFIG)
    (root / "helpers.py").write_text('def greet(name):\n    """Say hello."""\n    return f"hello {name}"\n')
    (root / "app.py").write_text("from helpers import greet\n\n\ndef main():\n    return greet('world')\n")


async def test_edit_reports_introduced_then_resolved(project: Path) -> None:
    python_project(project)
    async with serve(project) as session:
        broken = await ok(
            session, "file_edit", file_path="app.py", old_string="greet('world')", new_string="greet(undefined_thing)"
        )
        assert "pylsp diagnostics for app.py" in broken
        assert "app.py:5:18 error undefined name 'undefined_thing' (pyflakes) — introduced by this edit" in broken

        fixed = await ok(
            session, "file_edit", file_path="app.py", old_string="greet(undefined_thing)", new_string="greet('you')"
        )
        assert "resolved: app.py:5:18 error undefined name 'undefined_thing' (pyflakes)" in fixed

        clean = await ok(session, "file_write", file_path="new_module.py", content="import os\n\nprint(os.sep)\n")
        assert "pylsp: no problems in new_module.py." in clean

        unused = await ok(
            session, "file_write", file_path="new_module.py", content="import os\nimport sys\n\nprint(os.sep)\n"
        )
        assert "'sys' imported but unused" in unused and "introduced by this edit" in unused

        # Files no server handles get no diagnostics section.
        plain = await ok(session, "file_write", file_path="notes.txt", content="hello\n")
        assert plain == "Created 'notes.txt' (6 bytes)."


async def test_diagnostics_tool_and_resource_with_updates(project: Path) -> None:
    python_project(project)
    (project / "bad.py").write_text("import os\n")
    updates: list[str] = []

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))

    async with serve(project, message_handler=on_message) as session:
        await session.subscribe_resource("loomkin://diagnostics")
        text = await ok(session, "lsp_diagnostics", file_path="bad.py")
        assert "bad.py:1:1 warning 'os' imported but unused (pyflakes)" in text
        assert "no problems" in await ok(session, "lsp_diagnostics", file_path="bad.py", severity="error")
        summary = await ok(session, "lsp_diagnostics")
        assert "bad.py:1:1 warning" in summary and "[pylsp]" in summary
        resource = await session.read_resource("loomkin://diagnostics")
        assert "bad.py:1:1 warning 'os' imported but unused (pyflakes) [pylsp]" in resource.contents[0].text
        with anyio.fail_after(10):
            while "loomkin://diagnostics" not in updates:
                await anyio.sleep(0.05)
        assert "`severity`" in await fails(session, "lsp_diagnostics", file_path="bad.py", severity="fatal")
        assert "no language server" in await fails(session, "lsp_diagnostics", file_path=".loomkin.toml")


async def test_definition_references_hover_symbols_rename(project: Path) -> None:
    python_project(project)
    async with serve(project) as session:
        definition = await ok(session, "lsp_definition", file_path="app.py", symbol="greet", line=5)
        assert "helpers.py:1:5  def greet(name):" in definition

        references = await ok(session, "lsp_references", file_path="helpers.py", symbol="greet")
        assert "app.py:1:" in references and "app.py:5:" in references and "helpers.py:1:5" in references

        hover = await ok(session, "lsp_hover", file_path="app.py", line=5, column=13)
        assert "Say hello." in hover

        outline = await ok(session, "lsp_symbols", file_path="app.py")
        assert "main (function) line 4" in outline

        renamed = await ok(session, "lsp_rename", file_path="helpers.py", symbol="greet", new_name="welcome")
        assert "Renamed to `welcome` in 2 file(s)." in renamed
        assert "+def welcome(name):" in renamed and "+from helpers import welcome" in renamed
        assert "def welcome(name):" in (project / "helpers.py").read_text()
        assert "return welcome('world')" in (project / "app.py").read_text()

        assert "not found" in await fails(session, "lsp_definition", file_path="app.py", symbol="nonexistent")
        assert "give `symbol`" in await fails(session, "lsp_hover", file_path="app.py")


async def test_rename_respects_write_rules(project: Path) -> None:
    python_project(project)
    (project / "LOOMKIN.md").write_text("## Allowed Operations\n- File Write Denied: `app.py`\n")
    async with serve(project) as session:
        message = await fails(session, "lsp_rename", file_path="helpers.py", symbol="greet", new_name="welcome")
        assert "nothing was renamed" in message and "app.py" in message
    assert "def greet(name):" in (project / "helpers.py").read_text()


async def test_clangd_diagnostics_and_detection(project: Path) -> None:
    # No [lsp] servers configured: clangd is detected for the C file.
    (project / "main.c").write_text("int main(void) {\n    return 0;\n}\n")
    async with serve(project) as session:
        broken = await ok(
            session, "file_edit", file_path="main.c", old_string="return 0;", new_string="return missing;"
        )
        assert "clangd diagnostics for main.c" in broken
        assert "main.c:2:12 error Use of undeclared identifier 'missing'" in broken and "introduced" in broken
        fixed = await ok(session, "file_edit", file_path="main.c", old_string="return missing;", new_string="return 1;")
        assert "clangd: no problems in main.c; this edit resolved 1:" in fixed
        assert "resolved: main.c:2:12 error Use of undeclared identifier 'missing'" in fixed


async def test_lsp_can_be_turned_off(project: Path) -> None:
    (project / ".loomkin.toml").write_text("[lsp]\nenabled = false\n")
    (project / "a.py").write_text("x = 1\n")
    async with serve(project) as session:
        result = await ok(session, "file_edit", file_path="a.py", old_string="x = 1", new_string="x = undefined")
        assert "diagnostics" not in result
        assert "[lsp] enabled = false" in await fails(session, "lsp_diagnostics", file_path="a.py")


async def test_diagnostics_on_edit_can_be_turned_off(project: Path) -> None:
    (project / ".loomkin.toml").write_text(PYLSP_CONFIG + "diagnostics_on_edit = false\n")
    (project / "a.py").write_text("x = 1\n")
    async with serve(project) as session:
        result = await ok(session, "file_edit", file_path="a.py", old_string="x = 1", new_string="x = undefined")
        assert "diagnostics" not in result
        assert "undefined name 'undefined'" in await ok(session, "lsp_diagnostics", file_path="a.py")


def test_lsp_status_lists_and_checks_servers(project: Path) -> None:
    (project / "a.py").write_text("x = 1\n")
    (project / ".loomkin.toml").write_text(
        '[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }, { name = "ghost", command = "no-such-ls", '
        'languages = ["python"] }]\n'
    )
    trust_project(project)  # the person ran `loomkin-mcp trust` for these commands
    done = subprocess.run(
        [LOOMKIN, "lsp-status", "--json"], cwd=project, capture_output=True, text=True, timeout=60, env=server_env()
    )
    status = {row["name"]: row for row in json.loads(done.stdout)}
    assert status["pylsp"]["ok"] is True and status["pylsp"]["languages"] == ["python"]
    assert status["ghost"]["ok"] is False and "not found" in status["ghost"]["error"]
    assert done.returncode == 1

    text = subprocess.run(
        [LOOMKIN, "lsp-status"], cwd=project, capture_output=True, text=True, timeout=60, env=server_env()
    ).stdout
    assert "✔ pylsp" in text and "✘ ghost" in text


def test_lsp_status_shows_a_server_that_answers_nothing_but_initialize(project: Path) -> None:
    """A server that starts and then answers nothing (pyright waiting for a configuration it was never sent) cannot
    serve: ✘ with why, not ✔."""
    (project / "a.py").write_text("x = 1\n")
    fake = Path(__file__).with_name("fake_lsp.py")
    (project / ".loomkin.toml").write_text(
        "[lsp]\nrequest_timeout_ms = 1000\n"
        f'servers = [{{ name = "mute", command = "{sys.executable}", args = ["{fake}", "mute"], '
        'languages = ["python"] }, { name = "pylsp", command = "pylsp" }]\n'
    )
    trust_project(project)
    done = subprocess.run(
        [LOOMKIN, "lsp-status", "--json"], cwd=project, capture_output=True, text=True, timeout=60, env=server_env()
    )
    status = {row["name"]: row for row in json.loads(done.stdout)}
    assert status["pylsp"]["ok"] is True, status
    assert status["mute"]["ok"] is False, status
    assert "answered initialize but not textDocument/hover on a.py within 1 s" in status["mute"]["error"], status
    assert done.returncode == 1


async def test_an_edit_that_breaks_parsing_does_not_call_other_warnings_resolved(project: Path) -> None:
    python_project(project)
    (project / "warned.py").write_text("import os\nimport sys\n\n\ndef f():\n    return 1\n")
    async with serve(project) as session:
        await ok(session, "file_read", file_path="warned.py")
        broken = await ok(session, "file_edit", file_path="warned.py", old_string="return 1", new_string="return (1")
    assert "introduced by this edit" in broken, broken
    assert "\n  resolved: " not in broken and "'os' imported but unused" not in broken, broken
    assert "earlier problem(s) not shown as resolved: warned.py does not parse from line" in broken, broken
