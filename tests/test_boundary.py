"""Containment, round two: nothing loomkin starts outside the sandbox takes orders from files the project, or a
command inside the sandbox, can write.

Every case is an attack through a real MCP client on the real `loomkin-mcp --stdio`. What judges it lies outside
the server's own words: marker files its programs would leave in a directory outside the project, secrets of the
server's environment, a real listening socket, the bytes on disk.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import GIT_IDENTITY, fails, git_init, ok, serve, trust_project, write_rules

pytestmark = pytest.mark.anyio

FAKE_LSP = Path(__file__).with_name("fake_lsp.py")
SECRETS = {
    "ANTHROPIC_API_KEY": "sk-ant-SECRET-4242",
    "LOOMKIN_TOKEN": "token-SECRET-4343",
    "DATABASE_URL": "postgres://me:SECRET-pw-4444@127.0.0.1/db",
}


@pytest.fixture
def markers(tmp_path: Path) -> Path:
    path = tmp_path / "markers"
    path.mkdir()
    return path


def marker_script(path: Path, markers: Path, name: str) -> Path:
    path.write_text(f'#!/bin/sh\ntouch "{markers}/{name}"\n')
    path.chmod(0o755)
    return path


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=os.environ | GIT_IDENTITY)


def committed(root: Path) -> None:
    git_init(root)
    (root / "a.txt").write_text("alpha\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")


async def test_a_submodules_own_fsmonitor_does_not_run(project: Path, markers: Path, tmp_path: Path) -> None:
    committed(project)
    sub = project / "sub"
    sub.mkdir()
    committed(sub)
    git(project, "add", "sub")  # a gitlink: git status would look inside it, under its own config
    git(project, "commit", "-qm", "sub")
    script = marker_script(tmp_path / "fsmonitor.sh", markers, "fsmonitor")
    git(sub, "config", "core.fsmonitor", str(script))
    (sub / "a.txt").write_text("changed\n")
    async with serve(project, trusted=False, env=GIT_IDENTITY) as session:
        for operation in ("status", "diff", "log", "show"):
            await ok(session, "git", operation=operation)
    assert os.listdir(markers) == []


async def test_a_repository_leading_outside_the_project_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("PRIVATE-KEY-4545\n")
    committed(project)
    git(project, "config", "core.worktree", str(outside))
    async with serve(project, trusted=False, env=GIT_IDENTITY) as session:
        refused = await fails(session, "git", operation="status")
        assert "core.worktree" in refused and "PRIVATE-KEY" not in refused
        refused = await fails(session, "git", operation="reset", args={"mode": "hard"})
        assert "core.worktree" in refused
    assert (outside / "id_rsa").read_text() == "PRIVATE-KEY-4545\n"

    # A `.git` file leading to another repository, and a repository borrowing another's objects.
    other = tmp_path / "other"
    other.mkdir()
    committed(other)
    pointer = tmp_path / "pointer"
    pointer.mkdir()
    (pointer / ".git").write_text(f"gitdir: {other / '.git'}\n")
    borrower = tmp_path / "borrower"
    borrower.mkdir()
    committed(borrower)
    (borrower / ".git" / "objects" / "info" / "alternates").write_text(f"{other / '.git' / 'objects'}\n")
    for root, why in ((pointer, "leads to"), (borrower, "borrows objects")):
        async with serve(root, trusted=False, env=GIT_IDENTITY) as session:
            refused = await fails(session, "git", operation="log")
            assert why in refused and "outside the project" in refused, refused

    # A project inside a bigger repository is not given that repository.
    inner = other / "inner"
    inner.mkdir()
    async with serve(inner, trusted=False, env=GIT_IDENTITY) as session:
        refused = await fails(session, "git", operation="status")
        assert f"serve {other} with --root" in refused, refused


async def test_a_sandboxed_command_cannot_move_or_replant_git(project: Path, markers: Path, tmp_path: Path) -> None:
    committed(project)
    write_rules(project, "## Allowed Operations\n- Shell: `sh *`\n")
    config_before = (project / ".git" / "config").read_bytes()
    script = marker_script(tmp_path / "fsmonitor.sh", markers, "fsmonitor")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("HOME-FILE-4646\n")
    plant = (
        "git init -q sub && git -C sub commit -q --allow-empty -m x && "
        f"git -C sub config core.fsmonitor {script} && touch sub/new.txt"
    )
    async with serve(project, env=GIT_IDENTITY) as session:
        moved = await ok(session, "shell", command=f"sh -c 'mv .git .git-old && git init -q . && "
                                                     f"git config core.worktree {home}'")  # fmt: skip
        assert "exit code: 0" not in moved.lower()
        await ok(session, "shell", command="sh -c 'echo x >> .git/description; echo y > .git/info/exclude'")
        await ok(session, "shell", command=f"sh -c '{plant}'")
        await ok(session, "git", operation="add", args={"all": True})
        status = await ok(session, "git", operation="status")
        assert "HOME-FILE" not in status and ".bashrc" not in status
        await ok(session, "git", operation="diff", args={"staged": True})
    assert (project / ".git").is_dir() and not (project / ".git-old").exists()
    assert (project / ".git" / "config").read_bytes() == config_before
    assert b"x" not in (project / ".git" / "description").read_bytes().splitlines()
    assert os.listdir(markers) == []
    assert (home / ".bashrc").read_text() == "HOME-FILE-4646\n"


async def test_language_server_settings_changed_after_trust_are_held_back(project: Path, markers: Path) -> None:
    """pylsp's `jedi.environment` names a Python to run: pointed at a project script after the person trusted
    the plain entry, it must not run (the entry's settings are part of what was trusted)."""
    evil = marker_script(project / "python-evil", markers, "jedi")
    (project / "app.py").write_text("import os\nos.path.join('a', 'b')\n")
    pylsp = str(Path(sys.executable).parent / "pylsp")
    entry = f'{{ name = "pylsp", command = "{pylsp}", languages = ["python"]'
    (project / ".loomkin.toml").write_text(f"[lsp]\nservers = [{entry} }}]\n")
    trust_project(project)
    settings = f'settings = {{ pylsp = {{ plugins = {{ jedi = {{ environment = "{evil}" }} }} }} }}'
    (project / ".loomkin.toml").write_text(f"[lsp]\nservers = [{entry}, {settings} }}]\n")
    async with serve(project, trusted=False) as session:
        await ok(session, "file_read", file_path="app.py")
        await session.call_tool("lsp_hover", {"file_path": "app.py", "line": 2, "character": 4})
        rules = (await session.read_resource("loomkin://rules")).contents[0].text
        assert "Held back until the person trusts this project" in rules and "jedi" in rules, rules
    assert os.listdir(markers) == []


async def test_language_servers_run_sandboxed_with_no_secrets(project: Path, markers: Path, tmp_path: Path) -> None:
    """A trusted server's own program (what pyright's `python.pythonPath`, a tsserver plugin or gopls' `env` can
    start) writes neither outside nor in the project, and sees none of the server's secrets."""
    wrapper = project / "server.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'touch "{markers}/outside" 2>/dev/null\n'
        f'touch "{project}/planted" 2>/dev/null\n'
        'env > "$XDG_CACHE_HOME/env.txt"\n'
        f'exec "{sys.executable}" "{FAKE_LSP}" ok\n'
    )
    wrapper.chmod(0o755)
    (project / "app.py").write_text("x = 1\n")
    (project / ".loomkin.toml").write_text(
        f'[lsp]\nservers = [{{ name = "wrapped", command = "{wrapper}", languages = ["python"] }}]\n'
    )
    async with serve(project, env=SECRETS) as session:
        hover = await session.call_tool("lsp_hover", {"file_path": "app.py", "line": 1, "character": 1})
        assert not hover.is_error, hover
    caches = list((Path(os.environ["XDG_CONFIG_HOME"]).parent / ".cache" / "loomkin-mcp" / "lsp").glob("*/wrapped"))
    seen = "\n".join(path.joinpath("env.txt").read_text() for path in caches if path.joinpath("env.txt").exists())
    assert "PATH=" in seen
    assert not any(value in seen for value in SECRETS.values()), seen
    assert os.listdir(markers) == [] and not (project / "planted").exists()


async def test_the_rules_cannot_be_rewritten_from_inside(project: Path) -> None:
    (project / "docs").mkdir()
    rules = "## Allowed Operations\n- Shell: `sh *`\n## Denied Operations\n- File Write: `secrets/**`\n"
    (project / "docs" / "rules.md").write_text(rules)
    (project / "LOOMKIN.md").symlink_to("docs/rules.md")
    async with serve(project) as session:
        await ok(session, "shell", command="sh -c 'echo \"- Shell: *\" > docs/rules.md'")
        replaced = await ok(session, "shell", command="sh -c 'rm LOOMKIN.md && mkdir LOOMKIN.md'")
        assert "put back" in replaced
        refused = await fails(session, "file_write", file_path="secrets/key.txt", content="x")
        assert "secrets/**" in refused
    assert (project / "docs" / "rules.md").read_text() == rules
    assert os.readlink(project / "LOOMKIN.md") == "docs/rules.md"


async def test_rules_that_cannot_be_read_fail_closed(project: Path) -> None:
    (project / "LOOMKIN.md").mkdir()
    async with serve(project) as session:
        shell = await fails(session, "shell", command="ls")
        assert "shell commands are off because LOOMKIN.md is not read" in shell
        write = await fails(session, "file_write", file_path="notes.txt", content="x")
        assert "writes are held" in write
    (project / "LOOMKIN.md").rmdir()
    (project / "LOOMKIN.md").symlink_to("gone.md")
    async with serve(project) as session:
        assert "is not read" in await fails(session, "shell", command="ls")


async def test_an_include_changed_after_trust_asks_again(project: Path, markers: Path, tmp_path: Path) -> None:
    committed(project)
    extra = project / "git-extra.cfg"
    extra.write_text("[user]\n\tname = Someone\n")
    git(project, "config", "include.path", str(extra))
    trust_project(project)
    script = marker_script(tmp_path / "fsmonitor.sh", markers, "fsmonitor")
    async with serve(project, trusted=False, env=GIT_IDENTITY) as session:
        await ok(session, "git", operation="status")
        rules = (await session.read_resource("loomkin://rules")).contents[0].text
        assert "Held back" not in rules
        extra.write_text(f"[core]\n\tfsmonitor = {script}\n")  # same size class, new content
        await ok(session, "git", operation="status")
        rules = (await session.read_resource("loomkin://rules")).contents[0].text
        assert "Held back until the person trusts this project" in rules and "fsmonitor" in rules, rules
    assert os.listdir(markers) == []


async def test_a_rewritten_hook_in_core_hookspath_asks_again(project: Path, markers: Path) -> None:
    committed(project)
    hooks = project / "githooks"
    hooks.mkdir()
    hook = hooks / "pre-commit"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    git(project, "config", "core.hooksPath", "githooks")
    trust_project(project)
    hook.write_text(f'#!/bin/sh\ntouch "{project}/hook-ran"\nexit 0\n')
    async with serve(project, trusted=False, env=GIT_IDENTITY) as session:
        (project / "a.txt").write_text("beta\n")
        await ok(session, "git", operation="commit", args={"message": "second", "all": True})
        rules = (await session.read_resource("loomkin://rules")).contents[0].text
        assert "pre-commit" in rules and "Held back" in rules, rules
    assert not (project / "hook-ran").exists()


async def test_commands_get_no_secrets_and_no_unix_socket(project: Path, tmp_path: Path) -> None:
    write_rules(project, "## Allowed Operations\n- Shell: `env`, `python3 *`\n")
    path = str(tmp_path / "agent.sock")
    accepted: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen()
    listener.settimeout(30)

    def serve_once() -> None:
        try:
            connection, _ = listener.accept()
            accepted.append(connection.recv(100))
        except OSError:
            pass

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    connect = f'import socket; s = socket.socket(socket.AF_UNIX); s.connect("{path}"); s.sendall(b"hi")'
    async with serve(project, env=SECRETS) as session:
        env = await ok(session, "shell", command="env")
        assert "PATH=" in env and not any(value in env for value in SECRETS.values()), env
        refused = await ok(session, "shell", command=f"python3 -c '{connect}'")
        assert "Operation not permitted" in refused, refused
    listener.close()
    thread.join(timeout=5)
    assert accepted == []


def test_every_program_key_of_gits_own_documentation_is_overridden() -> None:
    """`git help --config` lists every key git knows; each that names a program must be in the one table."""
    from loomkin_mcp.workspace import program_key

    listed = subprocess.run(["git", "help", "--config"], capture_output=True, text=True, check=True).stdout.split()
    endings = ("command", "program", "cmd", "helper", "editor", "pager", "hook", "hookspath")
    program_like = [
        key for key in listed
        if (not key.lower().startswith(("advice.", "color.")) and key.lower().endswith(endings))
        or key.lower() in ("core.fsmonitor", "diff.external")
        or (key.lower().startswith("filter.") and key.lower().endswith((".clean", ".smudge", ".process")))
    ]  # fmt: skip
    assert len(program_like) > 15, listed[:20]
    missing = [key for key in program_like if program_key(key.replace("<", "").replace(">", "")) is None]
    assert missing == [], missing
    assert program_key("gpg.ssh.defaultKeyCommand") is not None
    assert program_key("diff.my.driver.textconv") is not None  # a subsection holding dots
