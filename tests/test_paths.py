"""Hostile paths: every one refused with one sentence, and nothing on disk changes outside the rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import TRANSPORTS, fails, git_init, ok, serve, snapshot, write_rules

# The same tool tests over every transport a client may use.
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.usefixtures("transport"),
    pytest.mark.parametrize("transport", TRANSPORTS, indirect=True),
]


@pytest.fixture
def hostile_project(tmp_path: Path, project: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret\n")
    sibling = tmp_path / "proj-evil"
    sibling.mkdir()
    (sibling / "x.txt").write_text("sibling\n")
    git_init(project)
    write_rules(
        project,
        "# Rules\n\n## Allowed Operations\n- File Write Denied: `config/runtime.exs`, `.env*`\n",
    )
    (project / "config").mkdir()
    (project / "config" / "runtime.exs").write_text("import Config\n")
    (project / ".env").write_text("TOKEN=1\n")
    (project / "ok.txt").write_text("fine\n")
    (project / "sub").mkdir()
    os.symlink(outside, project / "link_out")
    os.symlink(outside / "secret.txt", project / "link_secret")
    os.symlink(project / "chain2", project / "chain1")
    os.symlink("link_out", project / "chain2")
    os.symlink("loop_b", project / "loop_a")
    os.symlink("loop_a", project / "loop_b")
    os.symlink("/etc/passwd", project / "passwd_link")
    os.symlink("../../proj-evil", project / "sub" / "sibling_link")
    os.mkfifo(project / "pipe")
    return project


def escaping_paths(project: Path) -> list[str]:
    """Paths that leave the project root, or could not name a file at all."""
    tmp = project.parent
    return [
        "../outside/secret.txt",
        "../outside/new.txt",
        "../../etc/passwd",
        "../" * 12 + "etc/passwd",
        "sub/../../outside/new.txt",
        "./../outside/new.txt",
        "sub/./../../outside/x",
        "/etc/passwd",
        "/tmp/loomkin-escape.txt",
        str(tmp / "outside" / "new.txt"),
        str(tmp / "outside" / "secret.txt"),
        str(project) + "/../outside/new.txt",
        str(tmp / "proj-evil" / "x.txt"),
        str(tmp / "proj-evil" / "new.txt"),
        "../proj-evil/new.txt",
        "../proj/../proj-evil/x.txt",
        "link_out/new.txt",
        "link_out/secret.txt",
        "link_secret",
        "chain1/new.txt",
        "chain2/secret.txt",
        "passwd_link",
        "sub/sibling_link/x.txt",
        "loop_a",
        "loop_a/new.txt",
        "loop_b",
        "ok\x00.txt",
        "\x00",
        "",
        "   ",
        "~/new.txt",
        "~root/.bashrc",
        "a/" * 3000 + "x",
        "..",
        "../",
        "/",
    ]


def forbidden_writes() -> list[str]:
    """Paths inside the root that writes must never touch."""
    return [
        ".git/config",
        ".git/hooks/pre-commit",
        ".git",
        "sub/../.git/config",
        ".GIT/config",
        "sub/.git/config",
        "config/runtime.exs",
        ".env",
        ".env.local",
        "sub/.env.production",
        "LOOMKIN.md",
        ".loomkin.toml",
        ".loomkin/decisions.db",
    ]


async def test_hostile_paths_are_refused_and_nothing_changes(hostile_project: Path) -> None:
    project = hostile_project
    tmp = project.parent
    before_outside = snapshot(tmp / "outside") | snapshot(tmp / "proj-evil")
    before_project = snapshot(project)
    refused = 0
    async with serve(project) as session:
        for path in escaping_paths(project):
            for tool, arguments in [
                ("file_write", {"file_path": path, "content": "pwned\n"}),
                ("file_edit", {"file_path": path, "old_string": "secret", "new_string": "pwned"}),
                ("file_read", {"file_path": path}),
            ]:
                message = await fails(session, tool, **arguments)
                assert any(
                    word in message for word in ("outside the project", "symlink", "NUL", "empty", "`~`", "long")
                ), (tool, path, message)
                refused += 1
            await fails(session, "directory_list", path=path)
            refused += 1
        for path in forbidden_writes():
            await fails(session, "file_write", file_path=path, content="pwned\n")
            await fails(session, "file_edit", file_path=path, old_string="a", new_string="pwned")
            refused += 2
        # A FIFO must be refused, not block the server.
        assert "regular file" in await fails(session, "file_read", file_path="pipe")
        # The legitimate path still works after all that.
        assert "fine" in await ok(session, "file_read", file_path="ok.txt")

    assert refused >= 150
    assert snapshot(tmp / "outside") | snapshot(tmp / "proj-evil") == before_outside
    assert snapshot(project) == before_project
    assert not Path("/tmp/loomkin-escape.txt").exists()


async def test_write_rules_allow_list_and_messages(project: Path) -> None:
    write_rules(
        project,
        "## Allowed Operations\n- File Write: `lib/**`, `test/**`\n- File Write Denied: `lib/secret/**`\n",
    )
    async with serve(project) as session:
        await ok(session, "file_write", file_path="lib/app.ex", content="defmodule App do\nend\n")
        await ok(session, "file_write", file_path="test/app_test.exs", content="# test\n")
        outside_rule = await fails(session, "file_write", file_path="README.md", content="x")
        assert "`File Write:`" in outside_rule and "lib/**" in outside_rule
        denied = await fails(session, "file_write", file_path="lib/secret/key.ex", content="x")
        assert "File Write Denied: lib/secret/**" in denied
        # Reads are not limited by write rules.
        await ok(session, "file_read", file_path="lib/app.ex")

        # LOOMKIN.md is re-read when it changes: the next call sees the new rule.
        write_rules(project, "## Allowed Operations\n- File Write: `docs/**`\n")
        assert "docs/**" in await fails(session, "file_write", file_path="lib/other.ex", content="x")
        await ok(session, "file_write", file_path="docs/guide.md", content="# Guide\n")
    assert not (project / "README.md").exists()
    assert not (project / "lib" / "secret").exists()


async def test_symlink_inside_the_project_is_followed(project: Path) -> None:
    (project / "real").mkdir()
    (project / "real" / "data.txt").write_text("one\n")
    os.symlink("real", project / "alias")
    async with serve(project) as session:
        await ok(session, "file_edit", file_path="alias/data.txt", old_string="one", new_string="two")
    assert (project / "real" / "data.txt").read_text() == "two\n"
    assert (project / "alias").is_symlink()
