"""The repo map through a real MCP client: content, ranking, budget, freshness, cache, project_context."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import anyio
import mcp_types as types
import numpy as np
import pytest
from mcp import ClientSession

from loomkin_mcp.repomap import FileTags, RankEngine, RepoIndex, extract
from loomkin_mcp.repomap._index import CACHE_VERSION

from conftest import GIT_IDENTITY, LOOMKIN, git_init, ok, processes, serve, server_env, text_of, write_rules

pytestmark = pytest.mark.anyio

SOURCES = {
    "core/models.py": "class User:\n    pass\n\n\ndef load_user(user_id):\n    return User()\n",
    "app/views.py": "from core.models import load_user, User\n\n\ndef show(uid):\n    return load_user(uid)\n",
    "app/api.py": "from core.models import load_user\n\n\ndef get(uid):\n    return load_user(uid)\n",
    "cli.py": "from core.models import load_user, User\n\n\ndef main():\n    print(load_user(1), User)\n",
    "leaf.py": "def unused_helper():\n    return 42\n",
    "web/util.ts": "export function formatName(name: string): string {\n  return name.trim();\n}\n",
    "web/app.tsx": "import { formatName } from './util';\nexport function App() {\n  return formatName(' x ');\n}\n",
    "web/legacy.js": "function legacyInit() {\n  return 1;\n}\nlegacyInit();\n",
    "native/lib.c": "int add(int a, int b) {\n    return a + b;\n}\n",
    "native/main.c": "int add(int a, int b);\nint main(void) {\n    return add(1, 2);\n}\n",
    "native/vec.cpp": "class Vec {\npublic:\n    int size() { return 0; }\n};\n",
    "lib/app.ex": "defmodule App do\n  def run(x), do: x\nend\n",
    "lib/worker.ex": "defmodule Worker do\n  def go, do: App.run(1)\nend\n",
    "main.go": "package main\n\nfunc Serve() int {\n\treturn 1\n}\n",
    "src/lib.rs": "pub fn parse_input(s: &str) -> usize {\n    s.len()\n}\n",
    "Main.java": "public class Main {\n    public static void launch() {}\n}\n",
    "tool.rb": "class Tool\n  def perform\n  end\nend\n",
}


def make_project(root: Path) -> None:
    for name, text in SOURCES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def body(repo_map: str) -> str:
    return repo_map.split("\n", 1)[1]


async def test_the_map_holds_the_definitions_ranks_and_fits(project: Path) -> None:
    make_project(project)
    async with serve(project) as session:
        progress: list[tuple[float, float | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, total))

        first = await session.call_tool("repo_map", {}, progress_callback=on_progress)
        assert progress and progress[-1] == (17.0, 17.0)  # the first index reports its progress
        repo_map = text_of(first)
        assert repo_map.startswith("Repo map: 17 files")
        for expected in [
            "class User:", "def load_user(user_id):", "export function formatName(name: string): string {",
            "function legacyInit() {", "int add(int a, int b) {", "class Vec {", "defmodule App do",
            "func Serve() int {", "pub fn parse_input(s: &str) -> usize {", "public class Main {",
            "def perform", "export function App() {",
        ]:  # fmt: skip
            assert expected in repo_map, expected
        # The module everyone uses outranks a file nobody references.
        assert repo_map.index("core/models.py:") < repo_map.index("\nleaf.py:")

        for budget in (64, 128, 256, 1024):
            text = body(await ok(session, "repo_map", max_tokens=budget))
            assert len(text) / 4 <= budget, budget

        focused = body(await ok(session, "repo_map", focus_files=["leaf.py"], max_tokens=64))
        assert focused.startswith("leaf.py:")
        named = body(await ok(session, "repo_map", identifiers=["parse_input"], max_tokens=64))
        assert "parse_input" in named

        resource = (await session.read_resource("loomkin://repo-map")).contents[0].text
        assert "core/models.py:" in resource


async def test_files_of_one_directory_are_listed_under_it_and_each_path_reads(project: Path) -> None:
    """`app/views.py` and `app/api.py` under one `app/` line; a file alone in its directory keeps its whole path.
    Read as a model reads it: every file the map names, put together from its lines, opens with file_read."""
    make_project(project)
    async with serve(project) as session:
        text = body(await ok(session, "repo_map", max_tokens=4096))
        lines = text.splitlines()
        assert lines.index("app/") + 1 in (lines.index("  views.py:"), lines.index("  api.py:")), text
        assert "core/models.py:" in lines and "core/" not in lines and "cli.py:" in lines, text
        named, directory = [], None
        for line in lines:
            if "│" in line:
                continue
            if line.endswith("/"):
                directory = line[:-1]
            elif line.startswith("  "):
                named.append(f"{directory}/{line.strip().removesuffix(':')}")
            else:
                directory = None
                named.append(line.removesuffix(":"))
        assert {"app/views.py", "app/api.py", "core/models.py"} <= set(named) <= set(SOURCES), named
        assert len(named) == len(set(named)) > len(SOURCES) / 2, named
        for path in named:
            assert await ok(session, "file_read", file_path=path), path


async def _add_a_function_and_see_it_mapped(session: ClientSession, project: Path) -> None:
    (project / "core" / "extra.py").write_text("def brand_new_function():\n    return 1\n")
    (project / "app" / "views.py").write_text(SOURCES["app/views.py"] + "\nbrand_new_function()\n")
    with anyio.fail_after(10):
        while "def brand_new_function" not in await ok(session, "repo_map", max_tokens=4096):
            await anyio.sleep(0.05)


async def test_the_map_follows_edits_on_disk_while_watching(project: Path) -> None:
    make_project(project)
    async with serve(project) as session:
        await ok(session, "repo_map")
        await _add_a_function_and_see_it_mapped(session, project)
        (project / "leaf.py").unlink()
        with anyio.fail_after(10):
            while "leaf.py" in await ok(session, "repo_map", max_tokens=4096):
                await anyio.sleep(0.05)


async def test_a_server_that_followed_edits_leaves_its_graph_for_the_next_run(project: Path) -> None:
    """The graph a server kept in step with edits is saved when it stops: the next run maps from it, and its map
    is the one a run without any cache makes."""
    make_project(project)
    async with serve(project) as session:
        await ok(session, "repo_map")
        await _add_a_function_and_see_it_mapped(session, project)
    command = [LOOMKIN, "repo-map", "--tokens", "4096", "--log-level", "info"]
    warm = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60, env=server_env())
    assert "0 parsed, 18 from cache" in warm.stderr and "graph of the last run" in warm.stderr, warm.stderr
    shutil.rmtree(project / ".loomkin")
    cold = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=60, env=server_env())
    assert "graph of the last run" not in cold.stderr and "def brand_new_function" in cold.stdout
    assert warm.stdout == cold.stdout


async def test_without_watching_the_map_refreshes_on_request(project: Path) -> None:
    make_project(project)
    (project / ".loomkin.toml").write_text("[repo]\nwatch_enabled = false\n")
    async with serve(project) as session:
        await ok(session, "repo_map")
        (project / "late.py").write_text("def added_later():\n    pass\n")
        assert "def added_later" in await ok(session, "repo_map", max_tokens=4096)


def test_the_cache_makes_a_restart_warm_and_the_cli_prints_the_map(project: Path) -> None:
    make_project(project)
    first = subprocess.run(
        [LOOMKIN, "repo-map", "--tokens", "512", "--log-level", "info"], cwd=project, capture_output=True,
        text=True, timeout=60, env=server_env(),
    )  # fmt: skip
    assert first.returncode == 0 and "core/models.py:" in first.stdout
    assert "17 parsed, 0 from cache" in first.stderr
    assert (project / ".loomkin" / "repomap" / "tags.json").exists()
    assert (project / ".loomkin" / ".gitignore").read_text().endswith("*\n")
    second = subprocess.run(
        [LOOMKIN, "repo-map", "--tokens", "512", "--log-level", "info"], cwd=project, capture_output=True,
        text=True, timeout=60, env=server_env(),
    )  # fmt: skip
    assert "0 parsed, 17 from cache" in second.stderr and second.stdout == first.stdout
    assert "graph of the last run" not in first.stderr and "graph of the last run" in second.stderr


async def test_project_context_gathers_rules_map_and_diagnostics(project: Path) -> None:
    make_project(project)
    write_rules(project, "# Project\n\n## Rules\n- Keep functions small\n")
    async with serve(project) as session:
        context = await ok(session, "project_context", max_tokens=6000)
        assert "## Rules (LOOMKIN.md)" in context and "Keep functions small" in context
        assert "## Repo map" in context and "core/models.py:" in context
        assert "## Diagnostics" in context
        assert len(context) / 4 <= 6000 - 4096
        prompt = await session.get_prompt("project_context")
        assert "## Repo map" in prompt.messages[0].content.text


def test_incremental_ranking_equals_a_fresh_one(project: Path) -> None:
    from loomkin_mcp.repomap import RankEngine, RepoIndex, grammar_for

    make_project(project)
    names = sorted(name for name in SOURCES if grammar_for(name))
    index = RepoIndex(project, project.parent / "cache" / "tags.json", lambda: names)
    index.build()
    engine = RankEngine()
    engine.rank(index.tags, {}, frozenset())
    (project / "leaf.py").write_text("from core.models import User\n\n\ndef uses_user():\n    return User\n")
    (project / "core" / "models.py").write_text(SOURCES["core/models.py"] + "\n\ndef load_users():\n    pass\n")
    index.update(["leaf.py", "core/models.py", "tool.rb"])
    (project / "tool.rb").unlink()
    index.update(["tool.rb"])
    for personal, mentioned in [({}, frozenset()), ({"leaf.py": 1.0}, frozenset({"formatName"}))]:
        incremental = engine.rank(index.tags, personal, mentioned)
        fresh = RankEngine().rank(index.tags, personal, mentioned)
        assert [(r.path, r.line, r.name) for r in incremental] == [(r.path, r.line, r.name) for r in fresh]
        assert all(abs(a.score - b.score) < 1e-6 for a, b in zip(incremental, fresh, strict=True))


@pytest.mark.parametrize(
    "planted",
    [
        "json list",
        "files as a list",
        "references as a list",
        "tags not JSON",
        "deeply nested",
        "fifo",
        "link to /dev/zero",
    ],
)
def test_a_planted_or_broken_cache_is_ignored_and_rebuilt(project: Path, planted: str) -> None:
    """`.loomkin/` comes with the project, so its cache may hold anything: the map parses the sources instead."""
    (project / "app.py").write_text("def handle_request(x):\n    return x\n")
    cache = project / ".loomkin" / "repomap" / "tags.json"
    cache.parent.mkdir(parents=True)
    info = (project / "app.py").stat()
    shapes = {
        "json list": "[]",
        "files as a list": json.dumps({"version": CACHE_VERSION, "files": []}),
        "references as a list": json.dumps(
            {"version": CACHE_VERSION, "files": {"app.py": [info.st_mtime_ns, info.st_size, "[[], [], []]"]}}
        ),
        "tags not JSON": json.dumps(
            {"version": CACHE_VERSION, "files": {"app.py": [info.st_mtime_ns, info.st_size, "[[" * 100_000]}}
        ),
        "deeply nested": f'{{"version": {CACHE_VERSION}, "files": {"[" * 100_000 + "]" * 100_000}}}',
    }
    if planted == "fifo":
        os.mkfifo(cache)
    elif planted == "link to /dev/zero":
        cache.symlink_to("/dev/zero")
    else:
        cache.write_text(shapes[planted])
    index = RepoIndex(project, cache, lambda: ["app.py"])
    index.build()
    # Parsed again, at once or (an entry whose stamp matches) when its tags are first read.
    assert [name for name, _, _ in index.tags["app.py"].definitions] == ["handle_request"]
    assert cache.is_file() and not cache.is_symlink()  # written anew, over what was planted


def _ranked(
    engine: RankEngine,
    tags: dict[str, FileTags],
    personal: dict[str, float],
    mentioned: frozenset[str],
    public: dict[str, frozenset[str]] | None = None,
) -> list[tuple[str, int, str, float]]:
    """The ranking, scores to single precision (what orders the map: pagerank started from earlier ranks, as
    an engine kept between maps does, differs in the last bits)."""
    ranked = engine.rank(tags, personal, mentioned, public=public)
    return [(r.path, r.line, r.name, float(np.float32(r.score))) for r in ranked]


STDLIB_PARTS = (
    "email",
    "json",
    "unittest",
    "asyncio",
    "importlib",
    "xml",
    "http",
    "urllib",
    "multiprocessing",
    "ctypes",
)
FIRST_MAP = re.compile(r"^Repo map: a first map from (\d+) of (\d+) files, as they are still being indexed")


def copy_of_stdlib_parts(project: Path) -> None:
    """~250 files of the standard library: more than a first index parses in one process."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for part in STDLIB_PARTS:
        shutil.copytree(stdlib / part, project / part, ignore=shutil.ignore_patterns("__pycache__"))


async def test_a_map_asked_for_while_a_large_project_is_indexed_comes_first_from_the_files_read(
    project: Path,
) -> None:
    """~250 files to parse, and a first map wanted after 1 ms: it comes from the files read by then (its header
    says how many of how many) with progress; the reading goes on; subscribers hear when it ends; the whole map is
    then what a process that waited for the whole index shows."""
    copy_of_stdlib_parts(project)
    updated = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ResourceUpdatedNotification) and str(message.params.uri) == "loomkin://repo-map":
            updated.set()

    progress: list[tuple[float, float | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total))

    async with serve(project, env={"LOOMKIN_FIRST_MAP_MS": "1"}, message_handler=on_message) as session:
        await session.subscribe_resource("loomkin://repo-map")  # type: ignore[arg-type]
        result = await session.call_tool("repo_map", {"max_tokens": 1024}, progress_callback=on_progress)
        first = text_of(result)
        read = FIRST_MAP.search(first)
        assert not result.is_error and read, first[:300]
        assert 0 < int(read[1]) < int(read[2]) and progress and progress[0][1] == int(read[2])
        assert body(first).strip() and len(first) / 4 <= 1024
        with anyio.fail_after(60):
            await updated.wait()
        whole = await ok(session, "repo_map", max_tokens=1024)
        assert whole.startswith(f"Repo map: {read[2]} files,")
    shutil.rmtree(project / ".loomkin")
    async with serve(project, env={"LOOMKIN_FIRST_MAP_MS": "0"}) as session:
        assert await ok(session, "repo_map", max_tokens=1024) == whole


async def test_a_server_stopped_while_it_indexes_keeps_what_it_read_and_leaves_no_worker(project: Path) -> None:
    """The client leaves right after a first map: the server stops the parsing (no worker process outlives it)
    and caches the files it read, which the next start does not parse again."""
    copy_of_stdlib_parts(project)
    async with serve(project, env={"LOOMKIN_FIRST_MAP_MS": "1"}) as session:
        read = FIRST_MAP.search(await ok(session, "repo_map"))
        assert read
    with anyio.move_on_after(10):  # (multiprocessing's resource tracker ends when it sees the server gone)
        while processes("multiprocessing", cwd=project):
            await anyio.sleep(0.05)
    assert processes("multiprocessing", cwd=project) == []
    cached = json.loads((project / ".loomkin" / "repomap" / "tags.json").read_text())["files"]
    assert int(read[1]) <= len(cached) <= int(read[2])


def test_a_saved_graph_ranks_as_the_rebuilt_one_and_follows_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new process ranks from the graph the last one saved: the same definitions, in the same order with the
    same scores, as a graph built from the tags; and once files change, the same as a graph built anew."""
    import email

    from loomkin_mcp.repomap import _saved_graph
    from loomkin_mcp.repomap._saved_graph import load_graph, save_graph, tags_fingerprint

    project = tmp_path / "email"
    shutil.copytree(Path(email.__file__).parent, project, ignore=shutil.ignore_patterns("__pycache__"))
    names = sorted(str(path.relative_to(project)) for path in project.rglob("*.py"))
    index = RepoIndex(project, tmp_path / "tags.json", lambda: names)
    index.build()
    public = {"message.py": frozenset({"Message"}), "parser.py": frozenset({"Parser", "HeaderParser"})}
    asks = [({}, frozenset(), public), ({"mime/text.py": 1.0}, frozenset(), None), ({}, frozenset({"walk"}), None)]
    expected = [_ranked(RankEngine(), index.tags, personal, mentioned, shown) for personal, mentioned, shown in asks]
    built = RankEngine()
    built.rank(index.tags, {}, frozenset())
    state = built.saved_state()
    assert state is not None
    save_graph(tmp_path / "graph.bin", tags_fingerprint(index.tags), state, {})

    warm = RepoIndex(project, tmp_path / "tags.json", lambda: names)
    warm.build()
    saved = load_graph(tmp_path / "graph.bin")
    assert saved is not None and saved.fingerprint == tags_fingerprint(warm.tags)
    for (personal, mentioned, shown), wanted in zip(asks, expected, strict=True):
        restored = RankEngine.restored(warm.tags, saved.arrays)  # each anew: packed, or unpacked by a name asked
        assert restored is not None
        assert _ranked(restored, warm.tags, personal, mentioned, shown) == wanted

    restored = RankEngine.restored(warm.tags, saved.arrays)
    assert restored is not None
    with (project / "utils.py").open("a") as handle:
        handle.write("\n\ndef walk_everything(x):\n    return x\n")
    (project / "charset.py").unlink()
    warm.update(["utils.py", "charset.py"])
    for personal, mentioned, shown in asks:  # as an engine kept between maps does (see the incremental test)
        updated = _ranked(restored, warm.tags, personal, mentioned, shown)
        fresh = _ranked(RankEngine(), warm.tags, personal, mentioned, shown)
        assert [ranked[:3] for ranked in updated] == [ranked[:3] for ranked in fresh]
        assert all(abs(a[3] - b[3]) < 1e-6 for a, b in zip(updated, fresh, strict=True))
    assert tags_fingerprint(warm.tags) != saved.fingerprint  # a graph of other tags would not be used
    # Nor one of the same files' tags as another version extracted them (an upgrade re-parses every file).
    now = tags_fingerprint(warm.tags)
    monkeypatch.setattr(_saved_graph, "CACHE_VERSION", _saved_graph.CACHE_VERSION + 1)
    assert tags_fingerprint(warm.tags) != now


def test_a_planted_or_broken_saved_graph_is_ignored(project: Path) -> None:
    """`.loomkin/` comes with the project: a saved graph that does not hold together is rebuilt, never used (the
    run that rebuilds it saves a sound one, which the next run uses); a FIFO there is refused in one sentence."""
    from loomkin_mcp.repomap._saved_graph import load_graph, save_graph

    make_project(project)

    def repo_map() -> subprocess.CompletedProcess[str]:
        return subprocess.run([LOOMKIN, "repo-map", "--tokens", "512", "--log-level", "info"], cwd=project,
                              capture_output=True, text=True, timeout=60, env=server_env())  # fmt: skip

    first = repo_map()
    graph = project / ".loomkin" / "repomap" / "graph.bin"
    saved = load_graph(graph)
    assert first.returncode == 0 and saved is not None
    plantings = {
        "garbage": lambda: graph.write_bytes(b"loomkin repo graph\n{" + os.urandom(4096)),
        "an index out of range": lambda: save_graph(
            graph, saved.fingerprint, saved.arrays | {"edge_keys": saved.arrays["edge_keys"] + 10**9}, saved.kept
        ),
        "a weight not finite": lambda: save_graph(
            graph, saved.fingerprint, saved.arrays | {"edge_weights": saved.arrays["edge_weights"] * np.nan}, saved.kept
        ),
        "truncated": lambda: graph.write_bytes(graph.read_bytes()[:-64]),
    }
    for planted, plant in plantings.items():
        plant()
        rebuilt = repo_map()
        assert rebuilt.returncode == 0 and rebuilt.stdout == first.stdout, planted
        assert "graph of the last run" not in rebuilt.stderr, (planted, rebuilt.stderr)
    reused = repo_map()
    assert "graph of the last run" in reused.stderr and reused.stdout == first.stdout
    graph.unlink()
    os.mkfifo(graph)
    refused = repo_map()  # as for every file loomkin keeps in `.loomkin/`: said, in one sentence
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert f"{graph} cannot be used because graph.bin is a FIFO, not a regular file; remove it" in refused.stderr


def test_a_big_build_parses_in_worker_processes_with_the_same_tags(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PARALLEL_FROM_FILES files a cold build parses on every core; the tags are those of one process,
    and a link is not followed there either (a file swapped for one is not read)."""
    from loomkin_mcp.repomap import RepoIndex, _index, grammar_for
    from loomkin_mcp.repomap._index import PARALLEL_FROM_FILES, parse_files

    monkeypatch.setattr(_index.os, "cpu_count", lambda: 2)  # workers even on a one-core machine
    pools: list[int] = []
    in_workers = _index._parse_in_workers

    def counted(root: str, names: list[str], workers: int, stop: object):  # type: ignore[no-untyped-def]
        pools.append(workers)
        yield from in_workers(root, names, workers, stop)

    monkeypatch.setattr(_index, "_parse_in_workers", counted)

    make_project(project)
    for n in range(PARALLEL_FROM_FILES):
        (project / "gen" / f"m{n % 7}").mkdir(parents=True, exist_ok=True)
        (project / "gen" / f"m{n % 7}" / f"f{n}.py").write_text(f"def f{n}():\n    return load_user({n})\n")
    (tmp_path / "outside.py").write_text("def secret_outside():\n    pass\n")
    (project / "linked.py").symlink_to(tmp_path / "outside.py")
    names = sorted(
        str(path.relative_to(project)) for path in project.rglob("*") if grammar_for(path.name) and path.is_file()
    )
    assert "linked.py" in names and len(names) > PARALLEL_FROM_FILES
    index = RepoIndex(project, tmp_path / "cache" / "tags.json", lambda: names)
    stats = index.build()
    serial = {name: tags for name, tags in parse_files(str(project), names) if tags is not None}
    assert pools == [2] and stats.parsed == len(serial) == len(names) - 1 and "linked.py" not in index.tags
    assert {name: (t.definitions, t.references) for name, t in index.tags.items()} == {
        name: (t.definitions, t.references) for name, t in serial.items()
    }
    assert index.tags["gen/m3/f3.py"].references == {"load_user": 1}
    assert index.tags["core/models.py"].definitions == [("User", 1, "class"), ("load_user", 5, "function")]


def test_the_same_project_ranks_the_same_whatever_order_its_files_were_parsed_in(tmp_path: Path) -> None:
    """Definitions tied in rank (three `__init__`s of the standard library's email.mime, say) must not swap
    places between a cold map and a warm one: pagerank's sums in another order differ in their last bits."""
    import email

    from loomkin_mcp.repomap import FileTags, RankEngine, RepoIndex, grammar_for

    root = Path(email.__file__).parent
    names = sorted(str(path.relative_to(root)) for path in root.rglob("*") if grammar_for(path.name))
    index = RepoIndex(root, tmp_path / "tags.json", lambda: names)
    index.build()
    forward = dict(sorted(index.tags.items()))
    backward = {
        path: FileTags(tags.mtime_ns, tags.size, tags.definitions[::-1], dict(reversed(tags.references.items())))
        for path, tags in sorted(index.tags.items(), reverse=True)
    }
    for personal in ({}, {"mime/text.py": 1.0}):
        ranked = [RankEngine().rank(tags, personal, frozenset(), limit=400) for tags in (forward, backward)]
        assert [(r.path, r.line, r.name) for r in ranked[0]] == [(r.path, r.line, r.name) for r in ranked[1]]


def _tags_of(sources: dict[str, str]) -> dict[str, FileTags]:
    tags = {}
    for path, text in sources.items():
        found = extract(path, text.encode(), 0, len(text))
        assert found is not None, path
        tags[path] = found
    return tags


def _ranked_files(sources: dict[str, str], focus: str) -> list[str]:
    """Files in the order a map focused on `focus` first shows them, for a made-up project."""
    ranked = RankEngine().rank(_tags_of(sources), {focus: 10.0}, frozenset(), focus=frozenset({focus}))
    return list(dict.fromkeys(item.path for item in ranked))


def _linked(sources: dict[str, str]) -> tuple[RankEngine, dict[str, set[str]]]:
    """The reference graph of a made-up project, and the files each file links to."""
    engine = RankEngine()
    engine.rank(_tags_of(sources), {}, frozenset())
    paths = list(engine._node)
    links = {
        path: {paths[engine._key_node[key]] for key in edges.keys.tolist()} for path, edges in engine._edges.items()
    }
    return engine, links


def test_an_elixir_call_through_an_alias_reaches_only_that_module() -> None:
    """`Config.get` after `alias App.Config` is a call of App.Config's `get`, not of the other nine `get`s."""
    sources = {
        "lib/app/worker.ex": "defmodule App.Worker do\n  alias App.Config\n  def run, do: Config.get(:limit)\nend\n",
        "lib/app/config.ex": "defmodule App.Config do\n  def get(key), do: key\nend\n",
    }
    for n in range(9):
        sources[f"lib/app/cache{n}.ex"] = f"defmodule App.Cache{n} do\n  def get(key), do: key\nend\n"
    ranked = _ranked_files(sources, "lib/app/worker.ex")
    assert ranked[0] == "lib/app/config.ex", ranked


def test_a_call_through_a_module_the_project_does_not_define_makes_no_edge() -> None:
    """Elixir's own `Map.put` and `Enum.join` are not calls of the project's `put` and `join`."""
    sources = {
        "lib/app/cache.ex": "defmodule App.Cache do\n  def store(m), do: Map.put(m, :a, 1) |> Enum.join()\nend\n",
        "lib/app/bucket.ex": "defmodule App.Bucket do\n  def put(b, k, v), do: {b, k, v}\n  def join(b), do: b\nend\n",
        "lib/app/user.ex": "defmodule App.User do\n  def name(u), do: App.Bucket.put(u, :n, 1)\nend\n",
    }
    assert _tags_of(sources)["lib/app/cache.ex"].qualified == {"Map": {"put": 1}, "Enum": {"join": 1}}
    engine, links = _linked(sources)
    assert not links.get("lib/app/cache.ex")
    # The project's own module: an edge to it and to its `put`.
    edges = engine._edges["lib/app/user.ex"]
    assert sorted(engine._key_name[key] for key in edges.keys.tolist()) == ["App.Bucket", "put"]


def test_python_and_typescript_calls_through_imports_reach_only_the_projects_own_modules() -> None:
    """`os.path.join`, `join` from os.path and `join` from 'path' are not the project's `join`; the project's own
    `paths.join`, imported either way, is — and only that module's, though another file defines `join` too."""
    sources = {
        "app/paths.py": "def join(*parts):\n    return '/'.join(parts)\n",
        "app/strings.py": "def join(items):\n    return ''.join(items)\n",
        "app/stdlib_user.py": "import os.path\nfrom os.path import join\n\n\n"
        "def where(a):\n    return os.path.join(a, 'x') + join(a)\n",
        "app/own_user.py": "from app import paths\nfrom app.paths import join\n\n\n"
        "def where(a):\n    return paths.join(a) + join(a)\n",
        "web/strings.ts": "export function join(items: string[]) { return items.join('') }\n",
        "web/node_user.ts": "import { join } from 'path'\nexport function where(a: string) { return join(a) }\n",
        "web/own_user.ts": "import { join } from './strings'\nexport function label(a: string[]) { return join(a) }\n",
    }
    _, links = _linked(sources)
    assert not links.get("app/stdlib_user.py")
    assert links["app/own_user.py"] == {"app/paths.py"}
    assert not links.get("web/node_user.ts")
    assert links["web/own_user.ts"] == {"web/strings.ts"}


def test_a_package_that_passes_on_a_name_it_imports_is_linked_to_its_definer() -> None:
    """`from ._config import Limits` in an `__init__.py` that only passes it on is a use of `_config`'s `Limits`
    (the file changes when the public API does); an import of a name the file also uses counts as that use
    alone, and a name from outside the project links nowhere."""
    sources = {
        "pkg/__init__.py": "from ._config import Limits\nfrom typing import Any\n\n__all__ = ['Limits']\n",
        "pkg/_config.py": "class Limits:\n    pass\n",
        "pkg/_client.py": "from ._config import Limits\n\n\ndef make():\n    return Limits() or Limits()\n",
    }
    engine, links = _linked(sources)
    assert links["pkg/__init__.py"] == {"pkg/_config.py"}
    assert engine._tags["pkg/_client.py"].qualified == {"._config": {"Limits": 2}}
    assert engine._tags["pkg/__init__.py"].qualified == {"._config": {"Limits": 1}, "typing": {"Any": 1}}


def test_names_never_link_files_of_different_languages() -> None:
    """A TypeScript `join(...)` does not make the Elixir file defining `join` one of its neighbours."""
    sources = {
        "apps/cli/src/channel.ts": "import { socket } from './socket'\nexport function connect() { join(socket) }\n",
        "apps/cli/src/socket.ts": "export const socket = 1\nexport function join(s: number) { return s }\n",
        "server/lib/room.ex": "defmodule Room do\n  def join(room), do: room\nend\n",
        "server/lib/other.ex": "defmodule Other do\n  def leave(room), do: room\nend\n",
    }
    assert _linked(sources)[1]["apps/cli/src/channel.ts"] == {"apps/cli/src/socket.ts"}


def test_a_caller_of_the_focus_ranks_above_an_unrelated_file() -> None:
    """Rank flows back from the focus to the files that use its distinctive names (its callers and tests)."""
    sources = {
        "app/billing.py": "def compute_invoice_total(lines):\n    return sum(lines)\n",
        "tests/test_billing.py": "from app.billing import compute_invoice_total\n\n\n"
        "def test_total():\n    assert compute_invoice_total([1]) == 1\n",
        "app/unrelated.py": "def format_banner(text):\n    return text\n",
        "app/other.py": "def other_helper():\n    return 1\n",
    }
    ranked = _ranked_files(sources, "app/billing.py")
    assert "app/billing.py" not in ranked  # the model has the focus file: its definitions are not repeated
    assert ranked.index("tests/test_billing.py") < ranked.index("app/unrelated.py"), ranked


def test_the_test_of_a_file_in_view_ranks_with_it() -> None:
    """A file the caller cares about brings its test (same stem, most directories in common) along, not the
    test of a same-named file elsewhere."""
    hub_users = {
        f"lib/app/user_{n}.ex": f"defmodule App.User{n} do\n  def run_{n}, do: App.Repo.fetch_all({n})\nend\n"
        for n in range(4)
    }
    sources = hub_users | {
        "lib/app/repo.ex": "defmodule App.Repo do\n  def fetch_all(x), do: x\nend\n",
        "lib/app/teams/role.ex": "defmodule App.Teams.Role do\n  def assign(x), do: x\nend\n",
        "lib/app/other/role.ex": "defmodule App.Other.Role do\n  def pick(x), do: x\nend\n",
        "test/app/teams/role_test.exs": "defmodule App.Teams.RoleTest do\n  use ExUnit.Case\n"
        "  defp setup_team, do: App.Teams.Role.assign(1)\nend\n",
        "test/app/other/role_test.exs": "defmodule App.Other.RoleTest do\n  use ExUnit.Case\n"
        "  defp setup_other, do: App.Other.Role.pick(1)\nend\n",
    }
    ranked = RankEngine().rank(_tags_of(sources), {"lib/app/teams/role.ex": 10.0}, frozenset())
    files = list(dict.fromkeys(item.path for item in ranked))
    assert files.index("test/app/teams/role_test.exs") < files.index("lib/app/repo.ex"), files
    assert files.index("test/app/other/role_test.exs") > files.index("lib/app/repo.ex"), files


async def test_files_changed_together_with_the_focus_rank_high(project: Path) -> None:
    """Two files that share no name but were committed together again and again: focused on one, the map names
    the other; the same files without that history do not."""
    make_project(project)
    env = dict(os.environ) | GIT_IDENTITY
    git_init(project)
    for n in range(3):
        (project / "billing.py").write_text(f"def invoice_total(lines):\n    return sum(lines) + {n}\n")
        (project / "report_layout.py").write_text(f"def page_margins():\n    return {n}\n")
        subprocess.run(["git", "-C", str(project), "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(project), "commit", "-qm", f"change {n}"], check=True, env=env)
    async with serve(project) as session:
        focused = await ok(session, "repo_map", focus_files=["billing.py"], max_tokens=160)
    assert "billing.py: in focus, 1 definition not repeated" in focused
    assert "report_layout.py:" in focused
    shutil.rmtree(project / ".git")
    async with serve(project) as session:
        without_history = await ok(session, "repo_map", focus_files=["billing.py"], max_tokens=160)
    assert "report_layout.py:" not in without_history


PACKAGE = {
    "shop/__init__.py": 'from ._cart import Cart\nfrom ._pay import pay\n\n__all__ = ["Cart", "pay"]\n',
    "shop/_cart.py": "class Cart:\n    def __init__(self):\n        self.items = []\n\n    def add(self, item):\n"
    "        self.items.append(item)\n\n    def total(self):\n        return sum(self.items)\n",
    "shop/_pay.py": "from ._cart import Cart\n\n\ndef pay(cart: Cart) -> int:\n    return cart.total()\n",
    "shop/_util.py": "def helper():\n    return 1\n\n\ndef other():\n    return helper() + helper() + helper()\n",
    "tests/test_cart.py": "from shop._cart import Cart\nfrom shop._util import helper, other\n\n\n"
    "def test_add():\n    cart = Cart()\n    cart.add(helper())\n    cart.add(other())\n    assert cart.total() == 4\n",
}


async def test_a_map_without_focus_leads_with_the_public_api_and_shows_each_member_under_its_class(
    project: Path,
) -> None:
    """The package's exports come first; a method is never shown without the line of its class above it, and the
    owner lines fit in the budget with the rest."""
    for name, text in PACKAGE.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    async with serve(project) as session:
        whole = await ok(session, "repo_map", max_tokens=2000)
        small = await ok(session, "repo_map", max_tokens=100)
    body = whole.split("\n", 1)[1]
    assert body.startswith(("shop/\n  _cart.py:\n1│ class Cart:", "shop/\n  _pay.py:\n4│ def pay(")), body
    files = [line for line in body.splitlines() if "│" not in line]
    assert files[0] == "shop/" and set(files[1:3]) == {"  _cart.py:", "  _pay.py:"}, files
    assert whole.index("1│ class Cart:") < whole.index("5│     def add(self, item):"), whole
    assert len(small) <= 100 * 4 and "class Cart:" in small, small
    for text in (whole, small):
        lines = text.splitlines()
        for index, line in enumerate(lines):
            if "│     def " in line:  # a method: its class is shown above it, in the same file block
                above = lines[:index]
                block_start = max(i for i, row in enumerate(above) if "│" not in row)
                assert any("│ class " in row for row in above[block_start:]), text


def test_the_public_surface_of_python_elixir_and_typescript_packages() -> None:
    from loomkin_mcp.repomap import public_surface

    sources = {
        **PACKAGE,
        "mix.exs": "defmodule App.MixProject do\nend\n",
        "lib/app.ex": "defmodule App do\nend\n",
        "lib/app/teams.ex": "defmodule App.Teams do\n  def list, do: []\nend\n",
        "lib/app/teams/role.ex": "defmodule App.Teams.Role do\nend\n",
        "web/package.json": '{"main": "dist/index.js"}',
        "web/src/index.ts": "export { format } from './util';\nexport function start(): void {}\nfunction local() {}\n",
        "web/src/util.ts": "export function format(s: string): string { return s; }\nexport function other() {}\n",
    }
    tags = {}
    for name, text in sources.items():
        if (found := extract(name, text.encode(), 0, len(text))) is not None:
            tags[name] = found
    public = public_surface(tags, lambda path: sources.get(path, ""))
    assert public == {
        "shop/_cart.py": {"Cart"},
        "shop/_pay.py": {"pay"},
        "lib/app.ex": {"App"},
        "lib/app/teams.ex": {"App.Teams"},
        "web/src/index.ts": {"start"},
        "web/src/util.ts": {"format"},
    }, public


def test_a_saved_public_surface_is_read_again_when_the_package_manifest_changes(project: Path) -> None:
    """The public surface saved with the graph came from files the index does not hold (package.json): when one
    changes, the next run works the surface out again instead of reusing it."""
    sources = {
        "web/package.json": '{"main": "src/first.ts"}',
        "web/src/first.ts": "export function startFirst(): void {}\n",
        "web/src/second.ts": "export function startSecond(): void {}\n",
    }
    for name, text in sources.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)

    def repo_map() -> subprocess.CompletedProcess[str]:
        return subprocess.run([LOOMKIN, "repo-map", "--tokens", "512", "--log-level", "info"], cwd=project,
                              capture_output=True, text=True, timeout=60, env=server_env())  # fmt: skip

    first = body(repo_map().stdout)
    assert first.startswith("web/src/\n  first.ts:"), first
    warm = repo_map()
    assert "graph of the last run" in warm.stderr and body(warm.stdout) == first
    (project / "web" / "package.json").write_text('{"main": "src/second.ts"}')
    moved = repo_map()
    assert "graph of the last run" in moved.stderr and body(moved.stdout).startswith("web/src/\n  second.ts:"), moved
