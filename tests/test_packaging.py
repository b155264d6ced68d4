"""loomkin-mcp as people install it: a wheel and an sdist built by `make dist` from a clean copy, and the
README's one-line installs (`pipx install`, `uv tool install`, `uvx --from`), run as written from inside a
clone of any name, each into a fresh environment, then started.

Downloads come from PyPI as in a real install; a cache under the test venv keeps reruns quick
without touching the real home.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from conftest import server_env

pytestmark = pytest.mark.anyio

REPO = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
CACHE = Path(sys.prefix) / "test-package-cache"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The repository's tracked files, copied as a fresh clone would have them (builds write into it), under a
    name of the person's choosing."""
    target = tmp_path / "my-fork"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def installer_env(tmp_path: Path) -> dict[str, str]:
    # The machine's environment (its proxy and certificates, as a person's shell has them), homes private.
    return os.environ | server_env(
        {
            "PIP_CACHE_DIR": str(CACHE / "pip"),
            "UV_CACHE_DIR": str(CACHE / "uv"),
            "PIPX_HOME": str(tmp_path / "pipx"),
            "PIPX_BIN_DIR": str(tmp_path / "bin"),
            "UV_TOOL_DIR": str(tmp_path / "uv-tools"),
            "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
            "UV_PYTHON_DOWNLOADS": "never",
            # Bytecode is compiled at first import anyway: not compiling every dependency saves the CPU.
            "PIP_NO_COMPILE": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        }
    )


def run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
    return done.stdout


async def initialize_over_stdio(program: Path, project: Path) -> set[str]:
    params = StdioServerParameters(command=str(program), args=["--stdio", "--root", str(project)], env=server_env())
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        return {tool.name for tool in (await session.list_tools()).tools}


async def test_make_dist_builds_a_wheel_that_installs_into_a_fresh_venv(
    clone: Path, tmp_path: Path, project: Path
) -> None:
    env = installer_env(tmp_path)
    run(["make", "dist", f"PYTHON={sys.executable}"], clone, env)
    wheel = next((clone / "dist").glob("loomkin_mcp-*-py3-none-any.whl"))
    assert next((clone / "dist").glob("loomkin_mcp-*.tar.gz"))  # the wheel above was built from it
    fresh = tmp_path / "fresh"
    run([str(BIN / "uv"), "venv", "--quiet", "--python", sys.executable, str(fresh)], tmp_path, env)
    run([str(BIN / "uv"), "pip", "install", "--quiet", "--python", str(fresh / "bin" / "python"), str(wheel)],
        tmp_path, env)  # fmt: skip
    program = fresh / "bin" / "loomkin-mcp"
    assert run([str(program), "--version"], tmp_path, env).startswith("loomkin-mcp ")
    assert {"file_read", "repo_map", "lsp_diagnostics"} <= await initialize_over_stdio(program, project)
    # The starter config ships in the wheel.
    run([str(program), "--root", str(project), "init"], tmp_path, env)
    assert "[decisions]" in (project / ".loomkin.toml").read_text()


def readme_installs() -> list[str]:
    readme = (REPO / "README.md").read_text()
    return [line for line in readme.splitlines() if line.startswith(("pipx install ", "uv tool install "))]


def test_the_readme_shows_both_installs() -> None:
    assert [line.split()[0] for line in readme_installs()] == ["pipx", "uv"]


@pytest.mark.parametrize("command", readme_installs())
async def test_the_readmes_one_line_installs(clone: Path, tmp_path: Path, project: Path, command: str) -> None:
    # Exactly as the README says, from inside the clone.
    argv = shlex.split(command)
    run([str(BIN / argv[0]), *argv[1:]], clone, installer_env(tmp_path))
    program = tmp_path / "bin" / "loomkin-mcp"
    assert run([str(program), "--version"], tmp_path, installer_env(tmp_path)).startswith("loomkin-mcp ")
    (project / "app.py").write_text("print('hi')\n")
    # The [python] extra put a language server beside it, found with no PATH change (none other on this PATH).
    bare = server_env({"PATH": "/usr/local/bin:/usr/bin:/bin"})
    status = json.loads(run([str(program), "--root", str(project), "lsp-status", "--json"], tmp_path, bare))
    assert status[0]["ok"] and status[0]["command"].startswith(str(tmp_path)), status
    assert "file_edit" in await initialize_over_stdio(program, project)


async def test_uvx_runs_it_from_the_clone_without_installing(clone: Path, tmp_path: Path, project: Path) -> None:
    """The README's `uvx --from '.[python]' loomkin-mcp --stdio`, as an editor's config would start it."""
    readme = (REPO / "README.md").read_text()
    assert "`uvx --from '.[python]' loomkin-mcp --stdio`" in readme
    env = installer_env(tmp_path)
    assert run([str(BIN / "uvx"), "--from", ".[python]", "loomkin-mcp", "--version"], clone, env).startswith(
        "loomkin-mcp "
    )


def test_make_test_as_a_user_without_sudo_names_what_stays_missing_and_goes_on() -> None:
    """`make apt-needs` (the system packages `make test` installs) for a user who is neither root nor has
    password-less sudo: one line naming what stays missing, and success, so the tests run and those that need it
    skip. Run as `nobody` when the suite runs as root; a package name that exists nowhere stands for a missing one."""
    makefile = Path(__file__).resolve().parent.parent / "Makefile"
    needs = "APT_NEEDS=loomkin-no-such-program=loomkin-no-such-package"
    command = ["make", "--no-print-directory", "-f", str(makefile), "apt-needs", needs]
    if os.getuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    elif shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        pytest.skip("this user has password-less sudo: make test would install, which is what it should do")
    env = server_env({"PATH": os.environ["PATH"]})
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "make test: not root and no password-less sudo, so what these Debian packages give stays missing: "
        "loomkin-no-such-package (the tests that need it skip)"
    ), done.stdout
