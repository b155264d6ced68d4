"""pyright and basedpyright — the most used Python servers — through a real MCP client, configured with settings
and detected on PATH (configured without settings, they are rows of the matrix in test_language_servers.py):
every feature, fresh diagnostics on edits, nothing left running.

Both send `workspace/diagnostic/refresh` and exit when it is answered with an error, wait for
`workspace/didChangeConfiguration` before answering, and give diagnostics when asked (pull), so an edit's
report compares with the answer to the previous pull.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import ok, processes, serve

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parent.parent
SERVERS = {
    "pyright": REPO / "node_modules" / ".bin" / "pyright-langserver",
    "basedpyright": REPO / ".venv-servers" / "bin" / "basedpyright-langserver",
}
SETTINGS = (
    '{ python = { analysis = { typeCheckingMode = "standard" } }, '
    'basedpyright = { analysis = { typeCheckingMode = "standard" } } }'
)


def two_files(root: Path) -> None:
    (root / "util.py").write_text('def greet(name: str) -> str:\n    """Say hello."""\n    return "hi " + name\n')
    (root / "app.py").write_text('from util import greet\n\n\ndef main() -> str:\n    return greet("world")\n')


def configure(root: Path, name: str, how: str) -> dict[str, str]:
    """`.loomkin.toml` for `how` (configured, with settings, detected); the server environment it needs."""
    command = SERVERS[name]
    if not command.exists():
        pytest.skip(f"{command} is not installed; `make test` installs it")
    if how == "detected":
        # Only this server's directory ahead of the usual PATH: found as the person's own program.
        return {"PATH": f"{command.parent}{os.pathsep}{os.environ['PATH']}"}
    settings = f", settings = {SETTINGS}" if how == "with settings" else ""
    (root / ".loomkin.toml").write_text(
        f'[lsp]\nservers = [{{ name = "{name}", command = "{command}", args = ["--stdio"], '
        f'languages = ["python"]{settings} }}]\n'
    )
    return {}


@pytest.mark.parametrize("how", ["with settings", "detected"])
@pytest.mark.parametrize("name", list(SERVERS))
async def test_every_feature_with_fresh_diagnostics(project: Path, name: str, how: str) -> None:
    two_files(project)
    env = configure(project, name, how)
    async with serve(project, env=env) as session:
        hover = await ok(session, "lsp_hover", file_path="app.py", line=5, column=12)
        assert "def greet(name: str) -> str" in hover, hover
        definition = await ok(session, "lsp_definition", file_path="app.py", line=5, column=12)
        assert "util.py:1:5" in definition, definition
        references = await ok(session, "lsp_references", file_path="util.py", line=1, column=5)
        assert "app.py:1:18" in references and "app.py:5:12" in references, references
        symbols = await ok(session, "lsp_symbols", file_path="util.py")
        assert "greet (function) line 1" in symbols, symbols
        status = (await session.read_resource("loomkin://rules")).contents[0].text
        assert "Held back" not in status

        broken = await ok(session, "file_edit", file_path="app.py", old_string='greet("world")', new_string="greet(1)")
        assert f"{name} diagnostics for app.py: 1 (1 introduced by this edit, 0 resolved)" in broken, broken
        assert 'app.py:5:18 error Argument of type "Literal[1]"' in broken and "introduced by this edit" in broken
        fixed = await ok(session, "file_edit", file_path="app.py", old_string="greet(1)", new_string='greet("you")')
        assert f"{name}: no problems in app.py; this edit resolved 1:" in fixed, fixed

        renamed = await ok(session, "lsp_rename", file_path="util.py", line=1, column=5, new_name="welcome")
        assert "util.py" in renamed and "app.py" in renamed, renamed
    assert "def welcome(" in (project / "util.py").read_text()
    assert "from util import welcome" in (project / "app.py").read_text()
    assert processes(SERVERS[name].name, cwd=project) == []


async def test_a_python_path_setting_runs_only_inside_the_sandbox(project: Path, tmp_path: Path) -> None:
    """pyright runs `python.pythonPath` to learn its search paths: a trusted project's setting that points at a
    project script runs it sandboxed, where it writes nothing outside and nothing in the project."""
    markers = tmp_path / "markers"
    markers.mkdir()
    evil = project / "python-evil"
    evil.write_text(f'#!/bin/sh\ntouch "{markers}/ran"\ntouch "{project}/planted"\nexec python3 "$@"\n')
    evil.chmod(0o755)
    two_files(project)
    command = SERVERS["pyright"]
    if not command.exists():
        pytest.skip(f"{command} is not installed; `make test` installs it")
    (project / ".loomkin.toml").write_text(
        f'[lsp]\nservers = [{{ name = "pyright", command = "{command}", args = ["--stdio"], languages = ["python"], '
        f'settings = {{ python = {{ pythonPath = "{evil}" }} }} }}]\n'
    )
    async with serve(project) as session:
        assert "def greet" in await ok(session, "lsp_hover", file_path="app.py", line=5, column=12)
    assert os.listdir(markers) == [] and not (project / "planted").exists()


@pytest.mark.parametrize("name", list(SERVERS))
async def test_diagnostics_asked_first_are_pulled(project: Path, name: str) -> None:
    """The first call of a session asks for a file's diagnostics: the server registers pull diagnostics only after
    it has the file, and the answer is pulled then (it was waited for as a publish that never comes)."""
    (project / "app.py").write_text("def main() -> str:\n    return undefined_name\n")
    configure(project, name, "with settings")
    async with serve(project) as session:
        shown = await ok(session, "lsp_diagnostics", file_path="app.py")
    assert f"{name}: 1 diagnostic(s) in app.py" in shown and '"undefined_name" is not defined' in shown, shown


@pytest.mark.parametrize("name", list(SERVERS))
async def test_references_asked_first_cover_files_not_open(project: Path, name: str) -> None:
    """The first call of a session lists a function's references: pyright answers with the files it has read,
    so it is asked once it says it has found the workspace's source files (it answered with the open file only)."""
    two_files(project)
    (project / "pkg").mkdir()
    for n in range(30):
        (project / "pkg" / f"use_{n}.py").write_text(f"from util import greet\n\nVALUE_{n} = greet('{n}')\n")
    configure(project, name, "with settings")
    async with serve(project) as session:
        references = await ok(session, "symbol_references", name_path="greet", path="util.py")
    assert references.startswith("62 reference(s) to function greet"), references  # imports and uses
