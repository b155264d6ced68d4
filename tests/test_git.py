"""git: Loomkin's operations on a real repository; no argument value can become an option."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import TRANSPORTS, fails, git_init, ok, serve

# The same tool tests over every transport a client may use.
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.usefixtures("transport"),
    pytest.mark.parametrize("transport", TRANSPORTS, indirect=True),
]


def git_log(project: Path) -> str:
    return subprocess.run(["git", "log", "--format=%s"], cwd=project, capture_output=True, text=True).stdout


async def test_status_add_commit_log_diff_show_reset_stash(project: Path) -> None:
    git_init(project)
    (project / "a.txt").write_text("one\n")
    async with serve(project) as session:
        assert "?? a.txt" in await ok(session, "git", operation="status")
        await ok(session, "git", operation="add", args={"paths": ["a.txt"]})
        assert "A  a.txt" in await ok(session, "git", operation="status")
        committed = await ok(session, "git", operation="commit", args={"message": "First commit"})
        assert "First commit" in committed
        assert git_log(project) == "First commit\n"

        (project / "a.txt").write_text("one\ntwo\n")
        diff = await ok(session, "git", operation="diff")
        assert "+two" in diff and "diff --git a/a.txt b/a.txt" in diff
        assert "No differences." == await ok(session, "git", operation="diff", args={"staged": True})
        await ok(session, "git", operation="add", args={"all": True})
        assert "+two" in await ok(session, "git", operation="diff", args={"staged": True, "paths": ["a.txt"]})
        await ok(session, "git", operation="commit", args={"message": "Second"})

        log = await ok(session, "git", operation="log", args={"limit": 5})
        assert "Second" in log and "First commit" in log
        assert "+two" in await ok(session, "git", operation="show", args={"ref": "HEAD"})
        assert "a.txt" in await ok(session, "git", operation="show", args={"ref": "HEAD~1", "stat": True})

        await ok(session, "git", operation="reset", args={"mode": "soft", "ref": "HEAD~1"})
        assert git_log(project) == "First commit\n"
        await ok(session, "git", operation="reset", args={"paths": ["a.txt"]})

        (project / "a.txt").write_text("stashed change\n")
        await ok(session, "git", operation="stash", args={"message": "wip"})
        assert (project / "a.txt").read_text() == "one\n"
        assert "wip" in await ok(session, "git", operation="stash", args={"action": "list"})
        await ok(session, "git", operation="stash", args={"action": "pop", "index": 0})
        assert (project / "a.txt").read_text() == "stashed change\n"


async def test_git_refuses_smuggled_options_and_bad_arguments(project: Path) -> None:
    git_init(project)
    (project / "a.txt").write_text("one\n")
    subprocess.run(["git", "add", "a.txt"], cwd=project, check=True)
    async with serve(project) as session:
        for ref in ["--upload-pack=touch pwned", "-c", "--output=../pwned", "HEAD; touch pwned", "$(touch pwned)", ""]:
            message = await fails(session, "git", operation="log", args={"ref": ref})
            assert "ref" in message or "empty" in message
            await fails(session, "git", operation="show", args={"ref": ref})
        assert "outside the project" in await fails(session, "git", operation="add", args={"paths": ["../outside.txt"]})
        assert "does not take message" in await fails(session, "git", operation="status", args={"message": "x"})
        assert "needs a message" in await fails(session, "git", operation="commit", args={})
        assert "paths, or all=true" in await fails(session, "git", operation="add")
        assert "`operation`" in await fails(session, "git", operation="push")
        assert "unknown argument" in await fails(session, "git", operation="log", args={"exec": "touch pwned"})
        # A path that looks like an option is passed after `--`, as a path.
        (project / "--output=x").write_text("odd name\n")
        await ok(session, "git", operation="add", args={"paths": ["--output=x"]})
    assert not list(project.parent.rglob("pwned*"))


async def test_git_outside_a_repository_says_what_to_do(project: Path) -> None:
    async with serve(project) as session:
        assert "git init" in await fails(session, "git", operation="status")
