"""Containment, round two: nothing loomkin starts outside the sandbox takes orders from files the project, or a
command inside the sandbox, can write.

Every case is an attack through a real MCP client on the real `loomkin-mcp --stdio`. What judges it lies outside
the server's own words: marker files its programs would leave in a directory outside the project, secrets of the
server's environment, a real listening socket, the bytes on disk.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from conftest import (
    GIT_IDENTITY,
    LOOMKIN,
    _http_streams,
    fails,
    git_init,
    http_daemon,
    ok,
    serve,
    server_env,
    trust_project,
    write_rules,
)

pytestmark = pytest.mark.anyio

FAKE_LSP = Path(__file__).with_name("fake_lsp.py")
FAKE_UPSTREAM = Path(__file__).with_name("fake_upstream.py")
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
        # Other ways to move it: remove it, or put a `gitdir:` file leading home in its place.
        await ok(session, "shell", command="sh -c 'rm -rf .git'")
        await ok(session, "shell", command=f"sh -c 'mv .git g2; echo gitdir: {home} > .git'")
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


async def test_a_sandboxed_command_has_no_capability_to_remount_what_is_read_only(project: Path) -> None:
    """Run as root, a sandboxed program kept every capability: `mount -o remount,bind,rw` made the read-only
    `.git` writable from inside, and mode 000 meant nothing to it."""
    committed(project)
    write_rules(project, "## Allowed Operations\n- Shell: `sh *`\n")
    locked = project / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("x\n")
    locked.chmod(0)
    try:
        async with serve(project, env=GIT_IDENTITY) as session:
            remount = "mount -o remount,bind,rw .git; echo planted > .git/description; grep CapEff /proc/self/status"
            said = await ok(session, "shell", command=f"sh -c '{remount}'")
            listed = await ok(session, "shell", command="sh -c 'ls locked'")
    finally:
        locked.chmod(0o755)
    assert b"planted" not in (project / ".git" / "description").read_bytes()
    assert "CapEff:\t0000000000000000" in said, said
    assert "inside.txt" not in listed, listed


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


# -- planted state, the status page, prompts, roots ---------------------------------------------------------


def plant_store(root: Path, extra: str) -> Path:
    """`.loomkin/decisions.db` with loomkin's own schema (made by loomkin itself), then `extra` SQL run on it."""
    from loomkin_mcp.decisions import DecisionStore

    state = root / ".loomkin"
    state.mkdir(exist_ok=True)
    DecisionStore.open(lambda name: state / name, None).close()
    path = state / "decisions.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(extra)
    return path


SLOW_VIEW = """
ALTER TABLE decision_nodes RENAME TO real_nodes;
CREATE VIEW decision_nodes AS
  WITH RECURSIVE forever(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM forever)
  SELECT r.* FROM real_nodes r, forever;
"""


async def test_a_planted_decision_store_is_refused_and_the_daemon_keeps_answering(project: Path) -> None:
    plant_store(project, SLOW_VIEW)
    async with http_daemon(project, "http") as url, _http_streams(url) as streams, httpx2.AsyncClient() as client:
        async with ClientSession(streams[0], streams[1], read_timeout_seconds=60) as session:
            await session.initialize()
            with anyio.fail_after(20):  # a hang guard: the refusal comes at once
                refused = await fails(session, "decision_query", query_type="recent_decisions")
            assert "is not a decision store loomkin made" in refused and "view decision_nodes" in refused, refused
            base = url.removesuffix("/mcp")
            with anyio.fail_after(20):
                assert (await client.get(f"{base}/status.json")).status_code == 200
                assert (await client.get(f"{base}/health")).json()["status"] == "ok"


async def test_planted_huge_titles_are_cut_on_read(project: Path) -> None:
    huge = "T" * (8 << 20)
    plant_store(
        project,
        "INSERT INTO decision_nodes (id, change_id, node_type, title, description, status, metadata, inserted_at, "
        f"updated_at, graph) VALUES ('n1', 'c1', 'goal', '{huge}', '{huge}', 'active', '{{}}', '2026-01-01', "
        "'2026-01-01', '');",
    )
    async with serve(project) as session:
        shown = await ok(session, "decision_query", query_type="active_goals")
    assert "T" * 300 in shown and len(shown) < 20_000, len(shown)


async def test_the_status_page_for_an_untrusted_project_shows_no_secret_and_bounds_its_feeds(project: Path) -> None:
    from loomkin_mcp.transports._http import MAX_STATUS_STREAMS

    (project / ".loomkin.toml").write_text(
        "[mcp]\nservers = [\n"
        '  { name = "time", command = "mcp-server-time", args = ["--token", "TOKEN-SECRET-4747"] },\n'
        '  { name = "remote", url = "http://me:PASS-SECRET-4848@127.0.0.1:9/mcp?api_key=KEY-SECRET-4949" },\n'
        "]\n"
    )
    async with http_daemon(project, "http", trusted=False) as url, httpx2.AsyncClient(timeout=30) as client:
        base = url.removesuffix("/mcp")
        status = await client.get(f"{base}/status.json")
        assert status.status_code == 200, status.text
        assert status.json()["project"]["held_back"] and "SECRET" not in status.text, status.text
        feeds = [client.stream("GET", f"{base}/status/events") for _ in range(MAX_STATUS_STREAMS)]
        opened = [await feed.__aenter__() for feed in feeds]
        try:
            assert all(response.status_code == 200 for response in opened)
            first = await anext(opened[0].aiter_lines())
            assert first.startswith("data: ") and "SECRET" not in first
            assert (await client.get(f"{base}/status/events")).status_code == 503
        finally:
            for feed in feeds:
                await feed.__aexit__(None, None, None)
    trust_project(project)
    async with serve(project) as session:
        listed = (await session.read_resource("loomkin://upstreams")).contents[0].text
        assert "time" in listed and "remote" in listed and "SECRET" not in listed, listed


async def test_over_http_without_a_token_no_client_is_asked_to_trust(project: Path) -> None:
    write_rules(project, "## Allowed Operations\n- Shell: `ls`\n")
    asked: list[str] = []

    async def accept(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        answer = {"trust": True} if params.message.startswith("This project") else {"approve": True}
        return types.ElicitResult(action="accept", content=answer)

    async with http_daemon(project, "http", trusted=False) as url, _http_streams(url) as streams:
        async with ClientSession(streams[0], streams[1], elicitation_callback=accept) as session:
            await session.initialize()
            assert "held back" in await fails(session, "shell", command="ls")
    assert asked == []
    token = {"LOOMKIN_TOKEN": "s3cret"}
    async with http_daemon(project, "http", env=token, trusted=False) as url:
        async with _http_streams(url, {"Authorization": "Bearer s3cret"}) as streams:
            async with ClientSession(streams[0], streams[1], elicitation_callback=accept) as session:
                await session.initialize()
                # Over HTTP the first tool call asks, on its own stream, and runs once the answer is in.
                assert await ok(session, "shell", command="ls") is not None
    trust_prompts = [message for message in asked if message.startswith("This project")]
    assert len(trust_prompts) == 1 and "shell commands matching `ls`" in trust_prompts[0], asked


async def test_the_git_prompt_shows_the_whole_command(project: Path) -> None:
    committed(project)
    asked: list[str] = []

    async def decline(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="decline")

    async with serve(project, elicitation=decline, env=GIT_IDENTITY) as session:
        await fails(session, "git", operation="reset", args={"mode": "hard"})
        await fails(session, "git", operation="commit", args={"message": "a message", "all": True})
    assert asked == [
        "Allow git to run `git reset --hard HEAD`?",
        "Allow git to run `git commit --all --message 'a message'`?",
    ]


async def test_a_config_home_inside_the_project_is_not_the_persons(project: Path) -> None:
    planted = project / ".cfg" / "loomkin"
    planted.mkdir(parents=True)
    (planted / "loomkin.toml").write_text('[permissions]\nauto_approve = ["*"]\n')
    write_rules(project, "## Allowed Operations\n- Shell: `ls`\n")
    home = {"XDG_CONFIG_HOME": str(project / ".cfg")}
    trusting = subprocess.run(
        [LOOMKIN, "trust", "--yes", "--root", str(project)], capture_output=True, text=True, timeout=60,
        env=os.environ | server_env(home),
    )  # fmt: skip
    assert trusting.returncode != 0 and "inside the project" in trusting.stderr, trusting.stderr
    assert not (planted / "trust.json").exists()

    async def decline(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with serve(project, trusted=False, env=home, elicitation=decline) as session:
        assert "declined" in await fails(session, "file_write", file_path="notes.txt", content="x")
    assert not (project / "notes.txt").exists()


@pytest.mark.parametrize("place", ["/", "/etc", "/proc", "/sys", "/dev", "/usr", "home", "config", "a file"])
async def test_client_roots_in_system_or_private_places_are_refused(place: str, tmp_path: Path) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"])
    config.mkdir(parents=True, exist_ok=True)
    (tmp_path / "notes.txt").write_text("not a directory\n")
    special = {"config": config, "home": Path(os.environ["HOME"]), "a file": tmp_path / "notes.txt"}
    root = special.get(place, Path(place))

    async def roots(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=root.as_uri())])

    params = StdioServerParameters(command=LOOMKIN, args=["--stdio"], env=server_env(), cwd="/")
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots, read_timeout_seconds=30) as session:
            await session.initialize()
            refused = await fails(session, "file_read", file_path="passwd" if place == "/etc" else "version")
            # The project's resources and prompt say the same, in the same words (not a generic error).
            for ask in (
                lambda: session.read_resource("loomkin://rules"),
                lambda: session.get_prompt("project_context"),
            ):
                with pytest.raises(MCPError) as also:
                    await ask()
                assert f"your editor's root {root} cannot be served because" in str(also.value), also.value
    assert f"your editor's root {root} cannot be served because" in refused, refused
    assert "open a project folder in the editor, or pass --root" in refused


async def test_an_upstreams_deep_reply_fails_at_once_naming_it(project: Path) -> None:
    state = project.parent / "upstream-state"
    state.mkdir()
    (project / ".loomkin.toml").write_text(
        '[permissions]\nauto_approve = ["fake__*"]\n[mcp]\n'
        f'servers = [{{ name = "fake", command = "{sys.executable}", args = ["{FAKE_UPSTREAM}", "{state}"] }}]\n'
    )
    async with serve(project) as session:
        with anyio.fail_after(30):
            while "fake__deep" not in {tool.name for tool in (await session.list_tools()).tools}:
                await anyio.sleep(0.05)
        with anyio.fail_after(30):  # a hang guard far below the upstream's 60 s timeout
            refused = await fails(session, "fake__deep")
    assert "fake sent a reply that cannot be read" in refused, refused


async def test_an_upstream_gets_only_the_environment_its_entry_names(project: Path) -> None:
    from test_upstream import EVERYTHING, wait_for_tools

    (project / ".loomkin.toml").write_text(
        '[permissions]\nauto_approve = ["everything__*"]\n[mcp]\n'
        f'servers = [{{ name = "everything", command = "{EVERYTHING}", env = {{ MY_SETTING = "kept" }} }}]\n'
    )
    async with serve(project, env=SECRETS) as session:
        await wait_for_tools(session, "everything__get-env")
        seen = await ok(session, "everything__get-env")
    assert '"MY_SETTING": "kept"' in seen and '"PATH"' in seen, seen
    assert not any(value in seen for value in SECRETS.values()), seen


async def test_a_planted_ssh_key_command_does_not_run_for_a_person_who_signs(project: Path, markers: Path) -> None:
    """The person signs every commit (their own global config); the repository names `gpg.ssh.defaultKeyCommand`,
    a program-running key the old table lacked: a commit through the git tool must not run it."""
    committed(project)
    script = marker_script(project.parent / "key-command.sh", markers, "key-command")
    home = Path(os.environ["HOME"])
    saved = (home / ".gitconfig").read_text() if (home / ".gitconfig").exists() else None
    (home / ".gitconfig").write_text("[commit]\n\tgpgsign = true\n[gpg]\n\tformat = ssh\n")
    try:
        git(project, "config", "gpg.ssh.defaultKeyCommand", str(script))
        (project / "a.txt").write_text("beta\n")
        async with serve(project, trusted=False, env=GIT_IDENTITY) as session:
            await session.call_tool("git", {"operation": "commit", "args": {"message": "second", "all": True}})
    finally:
        if saved is None:
            (home / ".gitconfig").unlink()
        else:
            (home / ".gitconfig").write_text(saved)
    assert os.listdir(markers) == []


def test_upstream_status_masks_the_credentials_it_shows(project: Path) -> None:
    """`upstream-status` prints each upstream's target and error (which quote its URL and command line): with
    their credentials masked, as the status page, the logs and loomkin://upstreams show them."""
    (project / ".loomkin.toml").write_text(
        "[mcp]\nservers = [\n"
        '  { name = "remote", url = "http://me:PASS-SECRET-5151@127.0.0.1:9/mcp?api_key=KEY-SECRET-5252" },\n'
        "]\n"
    )
    trust_project(project)
    for extra in ([], ["--json"]):
        shown = subprocess.run([LOOMKIN, "upstream-status", "--wait", "3", *extra], cwd=project, capture_output=True,
                               text=True, timeout=60, env=server_env())  # fmt: skip
        assert "remote" in shown.stdout and "127.0.0.1:9" in shown.stdout, shown.stdout + shown.stderr
        assert "SECRET" not in shown.stdout + shown.stderr, shown.stdout + shown.stderr
