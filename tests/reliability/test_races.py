"""Check-then-use races: a directory on the path swapped for a symlink out of the project while tools use it.

Another process swaps `d/` (a real directory inside the project) with a symlink to a directory outside,
1,000 times, while the client writes `d/…` and reads `d/secret.txt` as fast as it can; then the same with
`git reset --hard` alternating between a commit where `d` is a directory and one where it is a symlink
out. Judged on disk and by content: nothing outside changes, and no byte of the outside secret is ever
returned.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import pytest
from reliability_figures import record

from loomkin_mcp._fs import SwappedPath, open_directory_beneath, open_file_beneath, open_root

from conftest import GIT_IDENTITY, git_init, serve, snapshot, text_of

pytestmark = pytest.mark.anyio

SECRET = f"OUTSIDE-SECRET-{uuid.uuid4().hex}"
SWAPS = 1000
CALLS = 300
# Both swap until the client is done (a stop file appears), then print how many swaps they made.
SWAPPER = """
import os, sys
root, stop = sys.argv[1], sys.argv[2]
d, real = os.path.join(root, "d"), os.path.join(root, "d.real")
swaps = 0
while not os.path.exists(stop):
    os.rename(d, real)
    try:
        os.symlink("../outside", d)
        os.unlink(d)
    except FileExistsError:
        pass
    tries = 0
    while True:
        try:
            os.rename(real, d)
            break
        except OSError:  # a write made `d/` anew in the gap (inside the project, as it should): set it aside
            tries += 1
            os.rename(d, f"{d}.made-{swaps}-{tries}")
    swaps += 1
print(swaps)
"""
RESETTER = """
import os, subprocess, sys
root, stop = sys.argv[1], sys.argv[2]
swaps = 0
while not os.path.exists(stop):
    target = "link" if swaps % 2 == 0 else "dir"
    # A file the server just made in `d/` can be in the way of a reset: that one is tried again.
    swaps += subprocess.run(["git", "reset", "-q", "--hard", target], cwd=root, capture_output=True).returncode == 0
subprocess.run(["git", "reset", "-q", "--hard", "dir"], cwd=root, check=True)
print(swaps)
"""


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "proj", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    (outside / "outside-only.txt").write_text("a name only the outside directory has\n")
    (root / "d").mkdir()
    (root / "d" / "secret.txt").write_text("inside\n")
    return root, outside


async def _hammer(root: Path, outside: Path, program: str, least: int, what: str) -> None:
    before = snapshot(outside)
    outcomes = {"written": 0, "read": 0, "refused": 0}
    stop = root.parent / "stop"
    async with serve(root) as session:
        process = subprocess.Popen(
            [sys.executable, "-c", program, str(root), str(stop)], env=os.environ | GIT_IDENTITY,
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            for number in range(CALLS):
                mark = f"MARK-{number}"
                result = await session.call_tool("file_write", {"file_path": "d/x.txt", "content": mark})
                outcomes["refused" if result.is_error else "written"] += 1
                result = await session.call_tool("file_read", {"file_path": "d/secret.txt"})
                assert SECRET not in text_of(result)
                outcomes["refused" if result.is_error else "read"] += 1
                listing = await session.call_tool("directory_list", {"path": "d"})
                assert "outside-only.txt" not in text_of(listing)
        finally:
            stop.touch()
            with anyio.CancelScope(shield=True):
                out, _ = await anyio.to_thread.run_sync(process.communicate)
    assert process.returncode == 0
    swaps = int(out.strip())
    assert swaps >= least, f"only {swaps} swaps happened while the client worked"
    after = snapshot(outside)
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:5]
    assert outcomes["written"] > 0 and outcomes["read"] > 0, outcomes
    record("races", what, swaps=swaps, **outcomes, bytes_outside=0, secret_returned=0)


async def test_a_directory_swapped_for_a_symlink_never_lets_a_tool_out(tmp_path: Path) -> None:
    root, outside = _layout(tmp_path)
    what = f"`d/` swapped for a symlink out (at least {SWAPS} times) during {CALLS} writes, reads and listings"
    await _hammer(root, outside, SWAPPER, SWAPS, what)


async def test_git_reset_between_a_directory_and_a_symlink_never_lets_a_tool_out(tmp_path: Path) -> None:
    root, outside = _layout(tmp_path)
    git_init(root)
    env = os.environ | GIT_IDENTITY
    (root / ".gitignore").write_text("d/x.txt\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "d is a directory"], cwd=root, check=True, env=env)
    subprocess.run(["git", "branch", "dir"], cwd=root, check=True, env=env)
    subprocess.run(["git", "rm", "-rq", "d"], cwd=root, check=True, env=env)
    (root / "d").symlink_to("../outside")
    subprocess.run(["git", "add", "d"], cwd=root, check=True, env=env)
    subprocess.run(["git", "commit", "-qm", "d is a symlink out"], cwd=root, check=True, env=env)
    subprocess.run(["git", "branch", "link"], cwd=root, check=True, env=env)
    subprocess.run(["git", "reset", "-q", "--hard", "dir"], cwd=root, check=True, env=env)
    what = f"`git reset --hard` alternating between `d/` and `d -> ../outside` during {CALLS} writes, reads, listings"
    await _hammer(root, outside, RESETTER, 50, what)


def test_descriptors_of_one_directory_list_it_independently(tmp_path: Path) -> None:
    """Two threads list the root at once (a write's cleanup, directory_list): each must see every entry once."""
    names = sorted(f"file-{n}" for n in range(5000))
    for name in names:
        (tmp_path / name).touch()
    root_fd = open_root(tmp_path)
    first, second = (open_directory_beneath(root_fd, ()) for _ in range(2))
    try:
        with os.scandir(first) as listing:
            seen = [next(listing).name for _ in range(10)]
            assert sorted(os.listdir(second)) == names  # done in between: it must not move the first's place
            seen += [entry.name for entry in listing]
    finally:
        for fd in (first, second, root_fd):
            os.close(fd)
    assert sorted(seen) == names


@pytest.mark.parametrize("how", ["openat2", "walk"])
def test_opening_beneath_the_root_follows_no_link_whichever_way(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openat2 (one call, the kernel refusing links) and the component walk (where openat2 is missing) agree."""
    import loomkin_mcp._fs as fs

    monkeypatch.setattr(fs, "_openat2_missing", how == "walk")
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("inside\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("secret\n")
    (root / "a" / "out").symlink_to(tmp_path / "outside")
    (root / "a" / "b" / "link.txt").symlink_to(tmp_path / "outside" / "secret")
    root_fd = open_root(root)
    try:
        fd = open_file_beneath(root_fd, ("a", "b", "f.txt"), os.O_RDONLY)
        assert os.read(fd, 100) == b"inside\n"
        os.close(fd)
        openat2_in_use = not fs._openat2_missing
        for parts, refused in [
            (("a", "out", "secret"), SwappedPath),
            (("a", "b", "link.txt"), SwappedPath),
            (("a", "..", "a", "b", "f.txt"), SwappedPath),
            (("a", "missing", "f.txt"), FileNotFoundError),
            (("a", "b", "f.txt", "x"), NotADirectoryError),
        ]:
            with pytest.raises(refused):
                open_file_beneath(root_fd, parts, os.O_RDONLY)
        with pytest.raises(SwappedPath):
            open_directory_beneath(root_fd, ("a", "out"))
        # A refusal is the walk's to word; it must not switch openat2 off for the opens after it.
        assert fs._openat2_missing is not openat2_in_use
    finally:
        os.close(root_fd)
