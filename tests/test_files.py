"""file_read, file_write, file_edit and directory_list through a real client over stdio."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from functools import partial
from pathlib import Path

import anyio
import pytest

from conftest import TRANSPORTS, fails, ok, serve

# The same tool tests over every transport a client may use.
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.usefixtures("transport"),
    pytest.mark.parametrize("transport", TRANSPORTS, indirect=True),
]


async def test_file_read_numbers_lines_and_pages(project: Path) -> None:
    (project / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    async with serve(project) as session:
        text = await ok(session, "file_read", file_path="a.txt")
        assert text.splitlines()[0] == "     1\tline 1"
        assert text.splitlines()[-1] == "    10\tline 10"

        page = await ok(session, "file_read", file_path="a.txt", offset=3, limit=2)
        assert page.splitlines()[:2] == ["     3\tline 3", "     4\tline 4"]
        assert "offset=5" in page

        absolute = await ok(session, "file_read", file_path=str(project / "a.txt"), limit=1)
        assert absolute.startswith("     1\tline 1")

        assert "past the end" in await fails(session, "file_read", file_path="a.txt", offset=50)
        assert "from 1" in await fails(session, "file_read", file_path="a.txt", offset=0)


async def test_file_read_cuts_long_lines_refuses_binary_and_flags_bad_utf8(project: Path) -> None:
    (project / "long.txt").write_text("x" * 100_000 + "\nshort\n")
    (project / "blob.bin").write_bytes(b"\x89PNG\x00\x00\x01binary")
    (project / "latin1.txt").write_bytes("café\n".encode("latin-1") + b"ok\n")
    (project / "empty.txt").write_text("")
    (project / "dir").mkdir()
    async with serve(project) as session:
        long = await ok(session, "file_read", file_path="long.txt")
        first = long.splitlines()[0]
        assert len(first) < 2_100 and "cut at 2000" in first
        assert "     2\tshort" in long and "long line(s) were cut" in long

        assert "binary" in await fails(session, "file_read", file_path="blob.bin")

        latin = await ok(session, "file_read", file_path="latin1.txt")
        assert "caf\ufffd" in latin and "not valid UTF-8" in latin

        assert "empty" in await ok(session, "file_read", file_path="empty.txt")
        assert "directory_list" in await fails(session, "file_read", file_path="dir")
        assert "file_search" in await fails(session, "file_read", file_path="missing.txt")


async def test_file_write_is_atomic_keeps_mode_and_creates_parents(project: Path) -> None:
    script = project / "run.sh"
    script.write_text("old\n")
    script.chmod(0o750)
    async with serve(project) as session:
        assert "Created 'deep/er/new.txt'" in await ok(
            session, "file_write", file_path="deep/er/new.txt", content="fresh\n"
        )
        assert (project / "deep/er/new.txt").read_text() == "fresh\n"

        await ok(session, "file_write", file_path="run.sh", content="#!/bin/sh\necho new\n")
        assert script.read_text() == "#!/bin/sh\necho new\n"
        assert stat.S_IMODE(script.stat().st_mode) == 0o750

        unicode = "ünïcødé ✓\r\nno final newline"
        await ok(session, "file_write", file_path="u.txt", content=unicode)
        assert (project / "u.txt").read_bytes() == unicode.encode("utf-8")

        assert "directory" in await fails(session, "file_write", file_path="deep", content="x")
        (project / "plain").write_text("a file\n")
        assert "is a file" in await fails(session, "file_write", file_path="plain/child.txt", content="x")

    leftovers = [p for p in project.rglob("*") if "loomkin-tmp" in p.name]
    assert leftovers == []


async def test_a_killed_writers_temp_file_goes_and_a_live_writers_stays(project: Path) -> None:
    (project / "a.txt").write_text("old\n")
    # Named after this test's pid, which is alive: what says a writer is gone is that nobody holds its lock.
    stale = project / f".a.txt.{os.getpid()}-1.deadbeef.loomkin-tmp"
    stale.write_text("half a wri")
    # Another process (this test) writing the same file right now holds its temp file locked.
    live = project / ".a.txt.0123456789ab.loomkin-tmp"
    live.write_text("half a wri")
    with live.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        async with serve(project) as session:
            await ok(session, "file_write", file_path="a.txt", content="new\n")
            assert not stale.exists() and live.exists() and (project / "a.txt").read_text() == "new\n"
            fcntl.flock(held, fcntl.LOCK_UN)  # that writer died
            await ok(session, "file_write", file_path="a.txt", content="newer\n")
    assert sorted(p.name for p in project.iterdir()) == ["a.txt"]


async def test_file_edit_zero_one_many_matches(project: Path) -> None:
    target = project / "app.py"
    target.write_text("def greet():\n    return 'hi'\n\nx = 1\nx = 1\nx = 1\n")
    async with serve(project) as session:
        missing = await fails(
            session, "file_edit", file_path="app.py", old_string="def gret():\n    return 'hi'", new_string="y"
        )
        assert "line 1" in missing and "def greet():" in missing

        many = await fails(session, "file_edit", file_path="app.py", old_string="x = 1", new_string="x = 2")
        assert "3 times" in many and "lines 4, 5, 6" in many and "replace_all" in many
        assert target.read_text().count("x = 1") == 3

        diff = await ok(session, "file_edit", file_path="app.py", old_string="'hi'", new_string="'hello'")
        assert "-    return 'hi'" in diff and "+    return 'hello'" in diff and "--- a/app.py" in diff

        replaced = await ok(
            session, "file_edit", file_path="app.py", old_string="x = 1", new_string="x = 2", replace_all=True
        )
        assert "3 occurrences" in replaced
        assert target.read_text() == "def greet():\n    return 'hello'\n\nx = 2\nx = 2\nx = 2\n"

        assert "identical" in await fails(session, "file_edit", file_path="app.py", old_string="x", new_string="x")
        assert "file_write" in await fails(session, "file_edit", file_path="app.py", old_string="", new_string="y")
        assert "does not exist" in await fails(
            session, "file_edit", file_path="nope.py", old_string="a", new_string="b"
        )


async def test_file_edit_preserves_crlf_and_missing_final_newline(project: Path) -> None:
    target = project / "win.txt"
    target.write_bytes(b"first line\r\nsecond line\r\nthird line")
    (project / "bad.txt").write_bytes(b"\xff\xfe broken \xff\n")
    async with serve(project) as session:
        await ok(session, "file_edit", file_path="win.txt", old_string="first line\nsecond", new_string="1st\n2nd")
        assert target.read_bytes() == b"1st\r\n2nd line\r\nthird line"
        await ok(session, "file_edit", file_path="win.txt", old_string="third line", new_string="last line")
        assert target.read_bytes() == b"1st\r\n2nd line\r\nlast line"

        assert "UTF-8" in await fails(session, "file_edit", file_path="bad.txt", old_string="broken", new_string="x")
        assert (project / "bad.txt").read_bytes() == b"\xff\xfe broken \xff\n"


async def test_directory_list_respects_gitignore(project: Path) -> None:
    (project / ".gitignore").write_text("build/\n*.log\n!keep.log\n")
    (project / "build").mkdir()
    (project / "build" / "out.o").write_text("x")
    (project / "src").mkdir()
    (project / "src" / "main.py").write_text("print(1)\n")
    (project / "debug.log").write_text("noise")
    (project / "keep.log").write_text("kept")
    os.symlink("src/main.py", project / "link.py")
    async with serve(project) as session:
        listing = await ok(session, "directory_list", path=".")
        assert "dir   src/" in listing and "file  .gitignore" in listing and "keep.log" in listing
        assert "link  link.py -> src/main.py" in listing
        assert "build" not in listing and "debug.log" not in listing
        assert "2 entries ignored" in listing

        everything = await ok(session, "directory_list", path=".", include_ignored=True)
        assert "dir   build/" in everything and "debug.log" in everything

        assert "main.py" in await ok(session, "directory_list", path="src")
        assert "file_read" in await fails(session, "directory_list", path="src/main.py")
        assert "does not exist" in await fails(session, "directory_list", path="nowhere")


async def test_concurrent_edits_lose_nothing_and_readers_never_see_a_torn_file(project: Path) -> None:
    slots = project / "slots.txt"
    slots.write_text("".join(f"slot-{n}\n" for n in range(24)))
    big = project / "big.txt"
    versions = [("A" * 999 + "\n") * 1000, ("B" * 999 + "\n") * 1000]
    big.write_text(versions[0])
    torn: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            content = big.read_text()
            if content not in versions:
                torn.append(len(content))

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        async with serve(project) as session:
            async with anyio.create_task_group() as group:
                for n in range(24):
                    edit = {"file_path": "slots.txt", "old_string": f"slot-{n}\n", "new_string": f"done-{n}\n"}
                    group.start_soon(partial(ok, session, "file_edit", **edit))
                for n in range(30):
                    group.start_soon(partial(ok, session, "file_write", file_path="big.txt", content=versions[n % 2]))
    finally:
        stop.set()
        watcher.join()
    assert slots.read_text() == "".join(f"done-{n}\n" for n in range(24))
    assert torn == []


async def test_file_read_output_is_bounded_whatever_the_limit(project: Path) -> None:
    (project / "wide.txt").write_text(("y" * 1500 + "\n") * 1000)
    async with serve(project) as session:
        text = await ok(session, "file_read", file_path="wide.txt", limit=100_000)
        assert len(text) < 210_000 and "read on with offset=" in text
