"""Which project a client is served: `--root` when given, else its first root, else (a client that declares no
roots) the current directory; one HTTP daemon serves each session its own project; refused roots get one sentence."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from conftest import (
    LOOMKIN,
    _http_streams,
    fails,
    http_daemon,
    ok,
    processes,
    serve,
    server_env,
    trust_project,
    write_rules,
)

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
PYLSP = '[lsp]\nservers = [{ name = "pylsp", command = "pylsp" }]\n'
FAKE_LSP = Path(__file__).with_name("fake_lsp.py")


def started_in(cwd: Path | str, *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=LOOMKIN, args=["--stdio", *args], env=server_env(), cwd=str(cwd))


def make_project(path: Path, readme: str, config: str = "") -> Path:
    path.mkdir(parents=True)
    (path / "README.md").write_text(readme)
    if config:
        (path / ".loomkin.toml").write_text(config)
    trust_project(path)
    return path


def roots_of(current: list[Path]) -> object:
    async def answer(context: object) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=path.as_uri()) for path in current])

    return answer


async def test_the_editors_first_root_is_served_wherever_it_started_us(tmp_path: Path) -> None:
    elsewhere = make_project(tmp_path / "elsewhere", "the directory the editor started us in\n")
    first = make_project(tmp_path / "first", "the editor's project\n")
    second = make_project(tmp_path / "second", "its second root\n")
    async with stdio_client(started_in(elsewhere)) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots_of([first, second])) as session:
            result = await session.initialize()
            assert result.server_info.name == "loomkin" and "first root" in (result.instructions or "")
            assert "the editor's project" in await ok(session, "file_read", file_path="README.md")
            assert "outside the project" in await fails(session, "file_read", file_path="../elsewhere/README.md")
            listed = (await session.read_resource("loomkin://projects")).contents[0].text
            assert f"This session is served {first}." in listed, listed
            assert f"Your editor's other roots (not served; reconnect with one first to serve it): {second}" in listed


async def test_a_change_of_roots_moves_the_next_call_to_the_new_project(tmp_path: Path) -> None:
    first = make_project(tmp_path / "first", "first project\n")
    second = make_project(tmp_path / "second", "second project\n")
    current = [first]
    async with stdio_client(started_in(tmp_path)) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots_of(current)) as session:
            await session.initialize()
            assert "first project" in await ok(session, "file_read", file_path="README.md")
            current[:] = [second]
            await session.send_roots_list_changed()
            with anyio.fail_after(20):
                while "second project" not in await ok(session, "file_read", file_path="README.md"):
                    await anyio.sleep(0.05)
            listed = (await session.read_resource("loomkin://projects")).contents[0].text
            assert f"This session is served {second}." in listed


async def test_a_client_without_roots_is_served_the_directory_it_started_us_in(tmp_path: Path) -> None:
    here = make_project(tmp_path / "here", "the current directory\n")
    write_rules(here, "Always answer in haiku.\n")
    async with stdio_client(started_in(here)) as (read, write):
        async with ClientSession(read, write) as session:
            result = await session.initialize()
            # Its project is known at initialize: the instructions are that project's.
            assert "Always answer in haiku." in (result.instructions or "")
            assert "the current directory" in await ok(session, "file_read", file_path="README.md")


async def test_the_answer_to_initialize_is_the_same_as_a_rooted_start(project: Path) -> None:
    async with stdio_client(started_in("/")) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots_of([project])) as session:
            rootless = await session.initialize()
    async with serve(project) as session:
        rooted = session.initialize_result
    assert rootless.capabilities == rooted.capabilities and rootless.protocol_version == rooted.protocol_version


async def test_without_roots_in_slash_the_refusal_is_the_answer() -> None:
    async with stdio_client(started_in("/")) as (read, write):
        async with ClientSession(read, write) as session:
            with pytest.raises(MCPError) as refused:
                await session.initialize()
    assert "without --root and your editor declares no roots" in str(refused.value)
    assert "pass --root" in str(refused.value)


async def test_root_still_wins_over_the_editors_roots(project: Path, tmp_path: Path) -> None:
    (project / "README.md").write_text("named by --root\n")
    elsewhere = make_project(tmp_path / "elsewhere", "the editor's root\n")
    async with stdio_client(started_in("/", "--root", str(project))) as (read, write):
        async with ClientSession(read, write, list_roots_callback=roots_of([elsewhere])) as session:
            await session.initialize()
            assert "named by --root" in await ok(session, "file_read", file_path="README.md")


@asynccontextmanager
async def client_of_daemon(url: str, roots: list[Path]) -> AsyncIterator[ClientSession]:
    async with _http_streams(url) as streams:
        async with ClientSession(streams[0], streams[1], list_roots_callback=roots_of(roots)) as session:
            await session.initialize()
            yield session


async def test_one_daemon_serves_each_session_its_own_project(tmp_path: Path) -> None:
    """Two projects, three concurrent sessions: each reads its own files only; one pylsp per project, shared by
    the sessions of that project; one trusted project runs its shell rule while the untrusted one beside it may
    not; /status.json lists both with their sessions."""
    alpha = make_project(tmp_path / "alpha", "alpha's readme\n", PYLSP)
    write_rules(alpha, "## Allowed Operations\n- Shell: `echo *`\n")
    trust_project(alpha)
    beta = tmp_path / "beta"
    beta.mkdir()
    (beta / "README.md").write_text("beta's readme\n")
    (beta / ".loomkin.toml").write_text(PYLSP)
    write_rules(beta, "## Allowed Operations\n- Shell: `echo *`\n")  # held back: nobody trusted beta
    for root in (alpha, beta):
        (root / "app.py").write_text("import os\n")
    # Started above both projects: without a token it serves only projects beneath the folder it started in.
    async with http_daemon(tmp_path, "http", pinned=False) as url:
        async with (
            client_of_daemon(url, [alpha]) as first,
            client_of_daemon(url, [beta]) as second,
            client_of_daemon(url, [alpha]) as third,
        ):
            assert "alpha's readme" in await ok(first, "file_read", file_path="README.md")
            assert "beta's readme" in await ok(second, "file_read", file_path="README.md")
            assert "alpha's readme" in await ok(third, "file_read", file_path="README.md")
            assert "outside the project" in await fails(second, "file_read", file_path="../alpha/README.md")
            for session in (first, second, third):
                assert "imported but unused" in await ok(session, "lsp_diagnostics", file_path="app.py")
            alpha_servers, beta_servers = processes("bin/pylsp", cwd=alpha), processes("bin/pylsp", cwd=beta)
            assert len(alpha_servers) == 1 and len(beta_servers) == 1 and alpha_servers != beta_servers
            assert "hello" in await ok(first, "shell", command="echo hello")
            refused = await fails(second, "shell", command="echo hello")
            assert "trust" in refused, refused
            with urllib.request.urlopen(url.removesuffix("/mcp") + "/status.json", timeout=10) as answer:
                status = json.loads(answer.read())
            listed = {row["root"]: row for row in status["projects"]}
            assert set(listed) == {str(alpha), str(beta)}
            assert listed[str(alpha)]["sessions"] == 2 and listed[str(beta)]["sessions"] == 1
            assert listed[str(alpha)]["trusted"] and not listed[str(beta)]["trusted"]
            assert [server["pid"] for server in listed[str(beta)]["language_servers"]] == beta_servers


async def test_an_idle_project_closes_its_servers_and_its_next_call_reopens_it(tmp_path: Path) -> None:
    alpha = make_project(tmp_path / "alpha", "alpha\n", PYLSP)
    (alpha / "app.py").write_text("import os\n")
    async with http_daemon(alpha, "http", "--project-idle-timeout", "1", pinned=False) as url:
        async with client_of_daemon(url, [alpha]) as session:
            assert "imported but unused" in await ok(session, "lsp_diagnostics", file_path="app.py")
            assert len(processes("bin/pylsp", cwd=alpha)) == 1
            with anyio.fail_after(20):
                while processes("bin/pylsp", cwd=alpha):
                    await anyio.sleep(0.1)
            assert "imported but unused" in await ok(session, "lsp_diagnostics", file_path="app.py")
            assert len(processes("bin/pylsp", cwd=alpha)) == 1


async def test_a_project_closed_while_its_language_server_starts_leaves_no_server_behind(tmp_path: Path) -> None:
    """Its server never answers initialize (it may take 30 s): the idle project closes while the start reading
    `app.py` set off is under way, and that server goes with it, not when the daemon ends."""
    hanging = (
        "[lsp]\nstart_timeout_ms = 30000\n"
        f'servers = [{{ name = "fake", command = "{sys.executable}", args = ["{FAKE_LSP}", "hang"], '
        'languages = ["python"] }]\n'
    )
    alpha = make_project(tmp_path / "alpha", "alpha\n", hanging)
    (alpha / "app.py").write_text("x = 1\n")
    async with http_daemon(alpha, "http", "--project-idle-timeout", "1", pinned=False) as url:
        async with client_of_daemon(url, [alpha]) as session:
            await ok(session, "file_read", file_path="app.py")  # its language server starts in the background
            with anyio.fail_after(10):
                while not processes("fake_lsp.py", cwd=alpha):
                    await anyio.sleep(0.05)
            with anyio.fail_after(10):
                while processes("fake_lsp.py", cwd=alpha):
                    await anyio.sleep(0.1)


async def test_a_projects_changes_are_told_to_its_own_clients_only(tmp_path: Path) -> None:
    """Both clients subscribe to loomkin://diagnostics; a breaking edit in alpha is told to alpha's client, and
    beta's, which shares the daemon, hears nothing of it."""
    alpha = make_project(tmp_path / "alpha", "alpha\n", PYLSP)
    beta = make_project(tmp_path / "beta", "beta\n", PYLSP)
    heard: dict[str, list[str]] = {"alpha": [], "beta": []}

    def listener(name: str) -> object:
        async def on_message(message: object) -> None:
            if isinstance(message, types.ResourceUpdatedNotification):
                heard[name].append(str(message.params.uri))

        return on_message

    @asynccontextmanager
    async def subscribed(url: str, name: str, root: Path) -> AsyncIterator[ClientSession]:
        async with _http_streams(url) as streams:
            async with ClientSession(
                streams[0], streams[1], list_roots_callback=roots_of([root]), message_handler=listener(name)
            ) as session:
                await session.initialize()
                await session.subscribe_resource("loomkin://diagnostics")  # type: ignore[arg-type]
                yield session

    async with (
        http_daemon(tmp_path, "http", pinned=False) as url,
        subscribed(url, "alpha", alpha) as first,
        subscribed(url, "beta", beta) as second,
    ):
        edited = await ok(first, "file_write", file_path="app.py", content="import os\n")
        assert "imported but unused" in edited, edited
        with anyio.fail_after(20):
            while "loomkin://diagnostics" not in heard["alpha"]:
                await anyio.sleep(0.05)
        # Told in the same pass as alpha's notice, beta's would be here by the end of two round trips of its own.
        await ok(second, "file_read", file_path="README.md")
        await ok(second, "file_read", file_path="README.md")
        assert heard["beta"] == [], heard


async def test_a_daemon_without_a_token_follows_no_root_outside_its_folder(tmp_path: Path) -> None:
    """Any local program can connect to a daemon without a token: naming a folder must not get it served (another
    user on the machine naming ~/.ssh). Beneath the folder the daemon started in, roots are followed; elsewhere a
    call says why and what to do; with a token, any root the client names is served."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    inside = make_project(here / "inside", "inside\n")
    outside = make_project(elsewhere / "outside", "outside\n")
    async with http_daemon(here, "http", pinned=False) as url:
        async with client_of_daemon(url, [inside]) as session:
            assert "inside" in await ok(session, "file_read", file_path="README.md")
        async with client_of_daemon(url, [outside]) as session:
            refused = await fails(session, "file_read", file_path="README.md")
    assert f"your editor's root {outside} cannot be served because it is outside {here}" in refused, refused
    assert "give it a token" in refused
    token = {"LOOMKIN_TOKEN": "a-token-for-this-test"}
    async with http_daemon(here, "http", pinned=False, env=token) as url:
        headers = {"Authorization": "Bearer a-token-for-this-test"}
        async with _http_streams(url, headers) as streams:
            async with ClientSession(streams[0], streams[1], list_roots_callback=roots_of([outside])) as session:
                await session.initialize()
                assert "outside" in await ok(session, "file_read", file_path="README.md")
