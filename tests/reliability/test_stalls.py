"""Inputs that once stalled the server, sent by one client of the HTTP daemon while a second keeps reading.

A `.gitignore` pattern that backtracks for minutes, `(a+)+$` in the search without ripgrep, five 10 MB
decision titles, `%` and `_` in a decision search, a 3,000-level directory tree. Each must be answered
(with results or one clear sentence) promptly, and the other client must be served meanwhile: the
figures printed are the slowest hostile answer and the slowest read of the bystander.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession
from reliability_figures import record

from conftest import _http_streams, http_daemon, text_of

pytestmark = pytest.mark.anyio

# What "promptly" means here is the 2 s; a call is failed as hung well past that, so that a slow
# machine shows its time in the figures rather than a flaky failure.
HUNG_SECONDS = 20
DEPTH = 3000


def _hostile_project(root: Path) -> None:
    (root / ".gitignore").write_text("*a*a*a*a*a*a*a*a*a*a*a*a*b\n")
    (root / ("a" * 60)).write_text("a name that makes a backtracking matcher try every split\n")
    (root / "long.txt").write_text("a" * 50_000 + "b\n")
    (root / "notes.txt").write_text("hello\n")
    os.chdir(root)
    try:
        for _ in range(DEPTH):
            os.mkdir("d")
            os.chdir("d")
        Path("deep.txt").write_text("hello from the bottom\n")
    finally:
        os.chdir("/")


HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("directory_list", {}),
    ("file_search", {"pattern": "**/*", "max_results": 50}),
    ("content_search", {"pattern": "(a+)+$", "max_results": 5}),
    ("content_search", {"pattern": "hello"}),
    ("decision_log", {"node_type": "goal", "title": "x" * 10_000_000}),
    ("decision_log", {"node_type": "goal", "title": "100% done_ish"}),
    ("decision_query", {"query_type": "search", "search_term": "%"}),
    ("decision_query", {"query_type": "search", "search_term": "_"}),
]


@pytest.fixture
def hostile_project(project: Path) -> Iterator[Path]:
    _hostile_project(project)
    yield project
    # Deeper than Python's recursion limit lets pytest's own clean-up (shutil.rmtree) go; rm does not recurse.
    subprocess.run(["rm", "-rf", str(project / "d")], check=True)


@pytest.mark.parametrize("ripgrep", ["with ripgrep", "without ripgrep"])
async def test_hostile_inputs_neither_stall_nor_block_another_client(hostile_project: Path, ripgrep: str) -> None:
    project = hostile_project
    env = {} if ripgrep == "with ripgrep" else {"LOOMKIN_RG": ""}
    slowest_hostile = slowest_bystander = 0.0
    answers: list[str] = []
    async with http_daemon(project, "http", env=env) as url:
        async with _http_streams(url) as hostile_streams, _http_streams(url) as bystander_streams:
            async with (
                ClientSession(*hostile_streams[:2]) as hostile,
                ClientSession(*bystander_streams[:2]) as bystander,
            ):
                await hostile.initialize()
                await bystander.initialize()
                done = anyio.Event()

                async def keep_reading() -> None:
                    nonlocal slowest_bystander
                    while not done.is_set():
                        started = time.monotonic()
                        with anyio.fail_after(HUNG_SECONDS):
                            result = await bystander.call_tool("file_read", {"file_path": "notes.txt"})
                        assert not result.is_error
                        slowest_bystander = max(slowest_bystander, time.monotonic() - started)
                        await anyio.sleep(0.05)

                async with anyio.create_task_group() as group:
                    group.start_soon(keep_reading)
                    for tool, arguments in HOSTILE * 2:
                        started = time.monotonic()
                        with anyio.fail_after(HUNG_SECONDS):
                            result = await hostile.call_tool(tool, arguments)
                        slowest_hostile = max(slowest_hostile, time.monotonic() - started)
                        text = text_of(result)
                        assert "Traceback" not in text and (not result.is_error or "\n" not in text.strip())
                        answers.append(text)
                    done.set()
    titles = [text for text in answers if "characters; at most" in text]
    assert len(titles) == 2, "the 10 MB titles were refused with a sentence"
    assert any("100% done_ish" in text for text in answers)
    searches = [text for text in answers if "notes.txt:1:hello" in text]
    # The tree is deeper than a path can be: what could not be searched is named, never dropped in silence.
    assert len(searches) == 2 and all("could not be searched" in text for text in searches), searches
    record(
        "stalls", f"{len(HOSTILE) * 2} hostile calls {ripgrep} (backtracking .gitignore, (a+)+$, 10 MB titles, "
        f"LIKE wildcards, a {DEPTH}-level tree) while a second client reads",
        slowest_hostile_answer_s=round(slowest_hostile, 2), slowest_read_of_the_other_client_s=round(
            slowest_bystander, 2),
    )  # fmt: skip
