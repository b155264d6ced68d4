"""The decision graph through a real MCP client, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from conftest import GIT_IDENTITY, LOOMKIN, fails, git_init, ok, serve, server_env, trust_project

pytestmark = pytest.mark.anyio

NODE_ID = re.compile(r"id ([0-9a-f-]{36})")


def _tool(name: str) -> str | None:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    return found


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's postgresql package), or a skip saying why."""
    if url := os.environ.get("LOOMKIN_TEST_DATABASE_URL"):
        yield url
        return
    initdb, pg_ctl = _tool("initdb"), _tool("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql); PostgreSQL tests skipped")
    data = Path(tempfile.mkdtemp(prefix="loomkin-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    try:
        subprocess.run([*as_postgres, initdb, "-D", str(data / "db"), "-A", "trust", "-U", "postgres"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data / "db"), "-o", options, "-l", str(data / "log"),
                        "-w", "start"], check=True, capture_output=True, timeout=120)  # fmt: skip
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"PostgreSQL could not be started here ({exc}; {detail.decode(errors='replace')[-300:]})")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data / "db"), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for the server: nothing for SQLite, a fresh database's DATABASE_URL for PostgreSQL."""
    if request.param == "sqlite":
        return {}
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"loomkin_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return {"DATABASE_URL": server.rsplit("/", 1)[0] + f"/{name}"}


def node_id(text: str) -> str:
    match = NODE_ID.search(text)
    assert match, text
    return match.group(1)


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env=os.environ | GIT_IDENTITY)


def commit_file(root: Path, name: str, message: str) -> None:
    (root / name).write_text(f"{name}\n")
    git(root, "add", name)
    git(root, "commit", "-m", message)


async def test_the_graph_from_goal_to_outcome(project: Path, backend: dict[str, str]) -> None:
    async with serve(project, env=backend) as session:
        goal = node_id(await ok(session, "decision_log", node_type="goal", title="Faster start-up"))
        again = await ok(session, "decision_log", node_type="goal", title="Faster start-up")
        assert "Reused the active goal" in again and node_id(again) == goal
        lazy = node_id(await ok(session, "decision_log", node_type="option", title="Import lazily", parent_id=goal))
        cache = node_id(await ok(session, "decision_log", node_type="option", title="Cache bytecode", parent_id=goal))
        decision = node_id(
            await ok(session, "decision_log", node_type="decision", title="Go lazy", parent_id=goal, confidence=80,
                     description="Lazy imports keep initialize fast")
        )  # fmt: skip
        assert "-[chosen]->" in await ok(
            session, "decision_link", from_id=decision, to_id=lazy, edge_type="chosen", rationale="cheapest"
        )
        await ok(session, "decision_link", from_id=decision, to_id=cache, edge_type="rejected")
        action = node_id(
            await ok(session, "decision_log", node_type="action", title="Move imports", parent_id=decision)
        )
        await ok(session, "decision_log", node_type="outcome", title="Start-up 380 ms", parent_id=action)

        assert "Faster start-up" in await ok(session, "decision_query", query_type="active_goals")
        recent = await ok(session, "decision_query", query_type="recent_decisions")
        assert "[outcome] Start-up 380 ms" in recent and "[decision] Go lazy" in recent
        assert "Import lazily" in await ok(session, "decision_query", query_type="search", search_term="lazily")
        pulse = await ok(session, "decision_query", query_type="pulse")
        assert "1 goal(s)" in pulse and "2 option(s)" in pulse and "7 edge(s)" in pulse

        context = (await session.read_resource("loomkin://decisions")).contents[0].text
        assert "Decision: Go lazy" in context and "chose: [option] Import lazily (cheapest)" in context
        assert "rejected: [option] Cache bytecode" in context and "leads to: [action] Move imports" in context
        assert "→ [outcome] Start-up 380 ms" in context

        await ok(session, "decision_update", id=cache, status="abandoned")
        assert "abandoned" in await ok(session, "decision_query", query_type="search", search_term="bytecode")

        invalid = await fails(session, "decision_log", node_type="idea", title="x")
        assert "`node_type` should be 'goal', 'decision', 'option'" in invalid  # lists the valid ones
        assert "is not a node" in await fails(session, "decision_link", from_id=goal, to_id="nope", edge_type="chosen")
        assert "is not a node" in await fails(session, "decision_update", id="nope", status="abandoned")
        assert "needs search_term" in await fails(session, "decision_query", query_type="search")

    exported = subprocess.run(
        [LOOMKIN, "decisions", "export", "--format", "mermaid"], cwd=project, capture_output=True, text=True,
        timeout=60, env=server_env(backend),
    )  # fmt: skip
    assert_mermaid_flowchart(exported.stdout, nodes=6, edges=7)


def assert_mermaid_flowchart(text: str, nodes: int, edges: int) -> None:
    """The export parses as a Mermaid flowchart: a header, node declarations, edges between declared ids."""
    lines = text.strip().splitlines()
    assert lines[0] == "flowchart TD"
    declared, linked = set(), []
    for line in lines[1:]:
        if match := re.fullmatch(r'    (n\d+)\["([a-z]+): ([^"\n]+)"\]', line):
            declared.add(match.group(1))
        elif match := re.fullmatch(r"    (n\d+) -->\|([a-z_]+)\| (n\d+)", line):
            linked.append((match.group(1), match.group(2), match.group(3)))
        else:
            raise AssertionError(f"not a Mermaid flowchart line: {line!r}")
    assert len(declared) == nodes and len(linked) == edges
    assert all(a in declared and b in declared for a, _, b in linked)
    assert {kind for _, kind, _ in linked} == {"leads_to", "chosen", "rejected"}


async def test_enforce_pre_edit_blocks_until_a_why_is_logged(project: Path, backend: dict[str, str]) -> None:
    git_init(project)
    (project / ".loomkin.toml").write_text("[decisions]\nenforce_pre_edit = true\n")
    (project / "app.py").write_text("x = 1\n")
    git(project, "add", "-A")
    git(project, "commit", "-m", "Start")  # history: the commits loomkin finds at its first look are not logged
    async with serve(project, env=backend) as session:
        await ok(session, "decision_query", query_type="pulse")  # that first look
        refused = await fails(session, "file_edit", file_path="app.py", old_string="x = 1", new_string="x = 2")
        assert "enforce_pre_edit" in refused and "decision_log" in refused
        assert (project / "app.py").read_text() == "x = 1\n"
        await ok(session, "decision_log", node_type="action", title="Bump x")
        await ok(session, "file_edit", file_path="app.py", old_string="x = 1", new_string="x = 2")
        # A commit closes the unit of work: the next edit needs its own why.
        git(project, "add", "app.py")
        git(project, "commit", "-m", "Bump x")
        # The commit is auto-logged as an action (the query scans first): that records what happened, not why.
        assert "Commit " in await ok(session, "decision_query", query_type="recent_decisions")
        assert "enforce_pre_edit" in await fails(session, "file_write", file_path="app.py", content="x = 3\n")
        await ok(session, "decision_log", node_type="decision", title="Set x to 3")
        await ok(session, "file_write", file_path="app.py", content="x = 3\n")


async def test_commits_are_logged_once_even_after_a_restart(project: Path, backend: dict[str, str]) -> None:
    git_init(project)
    (project / "a.txt").write_text("a\n")
    git(project, "add", "a.txt")
    git(project, "commit", "-m", "History before loomkin")
    async with serve(project, env=backend) as session:
        await ok(session, "decision_log", node_type="goal", title="Tidy the readme")
        await ok(session, "decision_query", query_type="pulse")  # the first scan records history, logs none
        (project / "b.txt").write_text("b\n")
        git(project, "add", "b.txt")
        git(project, "commit", "-m", "Add b with plain git")
        found = await ok(session, "decision_query", query_type="search", search_term="Add b with plain git")
        assert found.count("[action] Commit ") == 1
        assert "History before loomkin" not in await ok(session, "decision_query", query_type="recent_decisions")
        exported = await ok(session, "decision_query", query_type="pulse")
        assert "1 action(s)" in exported
    # Restarted, and with two servers on the project at once: still logged once.
    async with serve(project, env=backend) as session, serve(project, env=backend) as other:
        (project / "c.txt").write_text("c\n")
        git(project, "add", "c.txt")
        git(project, "commit", "-m", "Add c while two servers watch")
        async with anyio.create_task_group() as group:
            for each in (session, other):
                group.start_soon(partial(ok, each, "decision_query", query_type="pulse"))
        found = await ok(session, "decision_query", query_type="search", search_term="Add b with plain git")
        assert found.count("[action] Commit ") == 1
        both = await ok(other, "decision_query", query_type="search", search_term="while two servers watch")
        assert both.count("[action] Commit ") == 1


async def test_four_processes_logging_at_once_lose_nothing(project: Path, backend: dict[str, str]) -> None:
    async def writer(n: int) -> None:
        async with serve(project, env=backend) as session:
            for i in range(250):
                await ok(session, "decision_log", node_type="observation", title=f"writer {n} note {i}")

    async with anyio.create_task_group() as group:
        for n in range(4):
            group.start_soon(writer, n)
    async with serve(project, env=backend) as session:
        assert "1000 observation(s)" in await ok(session, "decision_query", query_type="pulse")
    if not backend:
        with sqlite3.connect(project / ".loomkin" / "decisions.db") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert connection.execute("SELECT COUNT(*) FROM decision_nodes").fetchone()[0] == 1000


async def test_commit_summaries_come_from_the_clients_model(project: Path) -> None:
    git_init(project)
    commit_file(project, "a.txt", "Start")
    asked: list[str] = []

    async def sampling(context: object, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append(params.model_preferences.hints[0].name)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="Adds the b file."), model="weak"
        )

    async with serve(project, sampling=sampling) as session:
        await ok(session, "decision_query", query_type="pulse")
        commit_file(project, "b.txt", "Add b")
        found = await ok(session, "decision_query", query_type="search", search_term="Add b")
        assert "Summary: Adds the b file. Changed: b.txt" in found
        assert asked == ["anthropic:claude-haiku-4-5"]


async def test_commit_summaries_from_a_provider_endpoint(project: Path) -> None:
    seen: list[dict] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "key": self.headers.get("x-api-key"), "model": body["model"]})
            answer = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Adds the c file"}}]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer.encode())

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        (project / ".loomkin.toml").write_text(
            '[model]\nweak = "vllm:tiny-model"\n\n[provider.endpoints]\n'
            f'vllm = {{ url = "http://127.0.0.1:{httpd.server_port}/v1", auth_key = "secret-key" }}\n'
        )
        git_init(project)
        commit_file(project, "a.txt", "Start")
        async with serve(project) as session:
            await ok(session, "decision_query", query_type="pulse")
            commit_file(project, "c.txt", "Add c")
            found = await ok(session, "decision_query", query_type="search", search_term="Add c")
            assert "Summary: Adds the c file. Changed: c.txt" in found
        assert seen == [{"path": "/v1/chat/completions", "key": "secret-key", "model": "tiny-model"}]
    finally:
        httpd.shutdown()


async def test_one_postgresql_database_keeps_each_projects_graph(tmp_path: Path, postgres_server: str) -> None:
    import psycopg

    name = f"loomkin_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    shared = {"DATABASE_URL": postgres_server.rsplit("/", 1)[0] + f"/{name}"}
    first, second, clone = tmp_path / "first", tmp_path / "second", tmp_path / "clone"
    for root in (first, second):
        root.mkdir()
        git_init(root)
        commit_file(root, f"{root.name}.txt", f"Start {root.name}")
    git(tmp_path, "clone", "--quiet", str(first), str(clone))

    async with serve(first, env=shared) as session:
        await ok(session, "decision_log", node_type="goal", title="Only the first project's goal")
        await ok(session, "decision_query", query_type="pulse")  # the first scan records history, logs none
        commit_file(first, "more.txt", "A commit of the first project")
        assert "A commit of the first" in await ok(session, "decision_query", query_type="recent_decisions")
    async with serve(second, env=shared) as session:
        assert "Only the first" not in await ok(session, "decision_query", query_type="active_goals")
        assert "A commit of the first" not in await ok(session, "decision_query", query_type="recent_decisions")
        assert "pulse: empty" in await ok(session, "decision_query", query_type="pulse")
        await ok(session, "decision_log", node_type="goal", title="The second project's goal")
    # A clone is the same project (its first commit), wherever it lives.
    async with serve(clone, env=shared) as session:
        goals = await ok(session, "decision_query", query_type="active_goals")
        assert "Only the first project's goal" in goals and "second project" not in goals

    # Sharing one graph across repositories is said explicitly, and is the person's to allow.
    for root in (first, second):
        (root / ".loomkin.toml").write_text('[decisions]\ngraph = "team-board"\n')
    async with serve(first, env=shared, trusted=False) as session:
        assert "Only the first project's goal" in await ok(session, "decision_query", query_type="active_goals")
    for root in (first, second):
        trust_project(root)
    async with serve(first, env=shared) as session:
        await ok(session, "decision_log", node_type="goal", title="A goal on the shared board")
    async with serve(second, env=shared) as session:
        goals = await ok(session, "decision_query", query_type="active_goals")
        assert "A goal on the shared board" in goals and "second project's goal" not in goals

    doctor = subprocess.run([LOOMKIN, "doctor", "--json"], cwd=second, capture_output=True, text=True, timeout=60,
                            env=server_env(shared))  # fmt: skip
    store = next(check for check in json.loads(doctor.stdout) if check["name"] == "decision store")
    assert "graph `team-board`: 1 nodes" in store["detail"] and "2 other project graph(s)" in store["detail"]


async def test_a_store_from_before_graphs_keeps_its_nodes(project: Path) -> None:
    from loomkin_mcp.decisions._schema import MIGRATIONS

    state = project / ".loomkin"
    state.mkdir()
    with sqlite3.connect(state / "decisions.db") as connection:
        connection.execute("CREATE TABLE decision_schema (version INTEGER NOT NULL)")
        for statement in MIGRATIONS[0][1]:
            connection.execute(statement)
        connection.execute("INSERT INTO decision_schema (version) VALUES (1)")
        connection.execute(
            "INSERT INTO decision_nodes (id, change_id, node_type, title, status, metadata, inserted_at, updated_at) "
            "VALUES ('n1', 'c1', 'goal', 'A goal from version one', 'active', '{}', '2026-01-01', '2026-01-01')"
        )
        connection.execute("INSERT INTO decision_commits VALUES ('abc', NULL, '2026-01-01')")
    async with serve(project) as session:
        assert "A goal from version one" in await ok(session, "decision_query", query_type="active_goals")
    with sqlite3.connect(state / "decisions.db") as connection:
        assert connection.execute("SELECT MAX(version) FROM decision_schema").fetchone()[0] == 2
        assert connection.execute("SELECT graph, commit_hash FROM decision_graph_commits").fetchall() == [("", "abc")]
