"""file_search and content_search, checked against ripgrep itself and against the Python fallback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from conftest import fails, ok, serve

pytestmark = pytest.mark.anyio

RG = str(Path(sys.executable).parent / "rg")

CASES = [
    {"pattern": "def \\w+"},
    {"pattern": "TODO|FIXME"},
    {"pattern": "[0-9]{3,}"},
    {"pattern": "^\\s+return"},
    {"pattern": "hello", "case_insensitive": True},
    {"pattern": "Hello"},
    {"pattern": "import", "glob": "*.py"},
    {"pattern": "fn|def", "glob": "*.{rs,md}"},
    {"pattern": "return", "context_lines": 1},
    {"pattern": "value", "context_lines": 2, "glob": "src/**"},
    {"pattern": "def", "output_mode": "files"},
    {"pattern": "e", "output_mode": "count"},
    {"pattern": "ünïcode"},
    {"pattern": "crlf line"},
]


def generated_tree(root: Path) -> None:
    files = {
        "README.md": "Hello world\nTODO: write docs\n",
        "src/app.py": "import os\n\n\ndef main():\n    value = 12345\n    return value\n",
        "src/util.py": "import sys\n# FIXME later\ndef helper(x):\n    return x * 2\n\ndef other():\n    return 7\n",
        "src/lib.rs": "fn main() {\n    let value = 42;\n}\n",
        "src/nested/deep.py": "def deep():\n    return 'hello HELLO'\n",
        "src/nested/.gitignore": "generated_*.py\n",
        "src/nested/generated_x.py": "def generated():\n    return 999\n",
        "docs/notes.txt": "ünïcode text\nvalue 1000\n",
        "build/out.py": "def built():\n    return 1\n",
        ".hidden/secret.py": "def secret():\n    return 0\n",
        ".gitignore": "build/\n*.log\n",
        "debug.log": "def logged(): return 1\n",
        "win.txt": "crlf line one\r\ncrlf line two\r\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    (root / "blob.bin").write_bytes(b"\x00\x01def binary\x00")


def rg_reference(root: Path, case: dict) -> str:
    """What `rg` prints for the same search, in the same order and line format."""
    argv = [
        RG,
        "--no-heading",
        "--line-number",
        "--sort",
        "path",
        "--no-require-git",
        "--no-ignore-parent",
        "--glob",
        "!.git",
    ]
    argv += ["--ignore-case"] if case.get("case_insensitive") else []
    mode = case.get("output_mode", "content")
    argv += {"files": ["--files-with-matches"], "count": ["--count"]}.get(mode, [])
    if case.get("context_lines") and mode == "content":
        argv += [f"--context={case['context_lines']}"]
    argv += ["--glob", case["glob"]] if case.get("glob") else []
    done = subprocess.run([*argv, "--regexp", case["pattern"]], cwd=root, capture_output=True, text=True)
    return "\n".join(line.rstrip("\r") for line in done.stdout.splitlines() if line != "--")


@pytest.mark.parametrize("engine", ["rg", "python"])
async def test_content_search_returns_what_rg_returns(project: Path, engine: str) -> None:
    generated_tree(project)
    env = {} if engine == "rg" else {"LOOMKIN_RG": ""}
    async with serve(project, env=env) as session:
        for case in CASES:
            expected = rg_reference(project, case) or f"No matches for `{case['pattern']}`."
            assert await ok(session, "content_search", **case) == expected, case


async def test_content_search_orders_a_parallel_search_like_rg_sort_path(project: Path) -> None:
    """ripgrep searches unordered on every core; the hits come back in `rg --sort path` order, also when the
    output is too big to order in memory (then a sorted run streams up to the cap)."""
    for n in range(60):  # `a-b/` sorts before `a/` as a string but after it component by component
        for directory in ("a", "a-b", "a/b", "a.b", "z"):
            (project / directory).mkdir(parents=True, exist_ok=True)
            (project / directory / f"f{n}.txt").write_text(f"hit {n}\nmiss\nhit again\n")
    async with serve(project) as session:
        case = {"pattern": "hit", "max_results": 5000}
        assert await ok(session, "content_search", **case) == rg_reference(project, case)
        # ~24 MB of matching lines: more than is ordered in memory.
        (project / "a" / "b" / "huge.txt").write_text(("hit " + "y" * 96 + "\n") * 240_000)
        capped = await ok(session, "content_search", pattern="hit", max_results=500)
        expected = rg_reference(project, {"pattern": "hit"}).splitlines()[:500]
        assert capped.splitlines()[:-1] == expected and "stopped at 500 matches" in capped


@pytest.mark.parametrize("engine", ["rg", "python"])
async def test_content_search_caps_and_errors(project: Path, engine: str) -> None:
    env = {} if engine == "rg" else {"LOOMKIN_RG": ""}
    (project / "many.txt").write_text("".join(f"match {n}\n" for n in range(500)))
    (project / "wide.txt").write_text("needle " + "x" * 10_000 + "\n")
    async with serve(project, env=env) as session:
        capped = await ok(session, "content_search", pattern="match", max_results=10)
        assert capped.count("\n") == 10 and "stopped at 10 matches" in capped
        assert capped.splitlines()[0] == "many.txt:1:match 0"
        wide = await ok(session, "content_search", pattern="needle")
        assert len(wide) < 600 and "line cut" in wide
        assert "not a valid regular expression" in await fails(session, "content_search", pattern="(oops")
        assert "outside the project" in await fails(session, "content_search", pattern="x", path="..")


@pytest.mark.parametrize("engine", ["rg", "python"])
async def test_file_search_globs_ignores_and_order(project: Path, engine: str) -> None:
    generated_tree(project)
    env = {} if engine == "rg" else {"LOOMKIN_RG": ""}
    now = time.time()
    for age, name in enumerate(["src/nested/deep.py", "src/util.py", "src/app.py"]):
        os.utime(project / name, (now - age * 100, now - age * 100))
    async with serve(project, env=env) as session:
        found = await ok(session, "file_search", pattern="**/*.py")
        assert found.splitlines() == ["src/nested/deep.py", "src/util.py", "src/app.py"]
        assert await ok(session, "file_search", pattern="*.py", path="src/nested") == "src/nested/deep.py"
        assert "src/lib.rs" in await ok(session, "file_search", pattern="src/*.rs")
        hidden = await ok(session, "file_search", pattern="**/*.py", include_hidden=True)
        assert ".hidden/secret.py" in hidden and "generated_x.py" not in hidden
        ignored = await ok(session, "file_search", pattern="**/*.py", include_ignored=True)
        assert "build/out.py" in ignored and "src/nested/generated_x.py" in ignored
        # Unlike `rg --glob`, a glob never brings back a file a nested .gitignore hides.
        assert "generated_x" not in await ok(session, "content_search", pattern="def", glob="*.py")
        few = await ok(session, "file_search", pattern="**/*.py", max_results=1)
        assert few.splitlines()[0] == "src/nested/deep.py" and "2 more" in few
        assert "No files match" in await ok(session, "file_search", pattern="**/*.java")


def test_the_unsafe_ignore_file_check_follows_ignore_rule_changes(tmp_path: Path) -> None:
    """In-process (the walk's cache is what is tested): a directory that stops being ignored by an edit made in
    place (no directory mtime changes) is looked into at the next search."""
    from loomkin_mcp.workspace import IgnoreRules

    (tmp_path / "a").mkdir()
    os.mkfifo(tmp_path / "a" / ".gitignore")
    (tmp_path / ".gitignore").write_text("a/\n")
    rules = IgnoreRules(tmp_path)
    assert rules.unsafe_ignore_file(tmp_path) is None  # `a/` is ignored: ripgrep will not open its files
    stat = (tmp_path / ".gitignore").stat()
    with open(tmp_path / ".gitignore", "w") as handle:  # in place: the directory's mtime stays
        handle.write("b/\n")
    os.utime(tmp_path / ".gitignore", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert rules.unsafe_ignore_file(tmp_path) == tmp_path / "a" / ".gitignore"


def test_the_unsafe_ignore_file_check_of_a_tree_without_rules_follows_a_rule_added_above(tmp_path: Path) -> None:
    """A tree with no ignore file anywhere is walked without matching a rule (nothing can be ignored); once an
    ignore file appears above, what it ignores is left out at the next check."""
    from loomkin_mcp.workspace import IgnoreRules

    (tmp_path / "a" / "b").mkdir(parents=True)
    os.mkfifo(tmp_path / "a" / "b" / ".ignore")
    rules = IgnoreRules(tmp_path)
    assert rules.unsafe_ignore_file(tmp_path) == tmp_path / "a" / "b" / ".ignore"
    (tmp_path / "a" / ".gitignore").write_text("b/\n")
    assert rules.unsafe_ignore_file(tmp_path) is None
    (tmp_path / "a" / ".gitignore").unlink()
    assert rules.unsafe_ignore_file(tmp_path) == tmp_path / "a" / "b" / ".ignore"


@pytest.mark.parametrize("planted", ["fifo", "link to /dev/zero"])
async def test_an_ignore_file_made_unsafe_between_searches_is_never_left_to_ripgrep(
    project: Path, planted: str
) -> None:
    """Once a directory was checked, the next search starts ripgrep at once and checks again while it runs: a
    `.gitignore` made a FIFO (ripgrep would block on it for ever) or a link to /dev/zero (it would read without
    end) since the last search stops that ripgrep, and the search answers from Python, whole."""
    (project / "a.py").write_text("def hello():\n    pass\n")
    (project / "sub").mkdir()
    (project / "sub" / "b.py").write_text("hello = 1\n")
    async with serve(project) as session:
        first = await ok(session, "content_search", pattern="hello")
        assert "a.py:1:def hello" in first and "sub/b.py:1:hello" in first
        if planted == "fifo":
            os.mkfifo(project / "sub" / ".gitignore")
        else:
            (project / "sub" / ".gitignore").symlink_to("/dev/zero")
        with anyio.fail_after(30):
            assert await ok(session, "content_search", pattern="hello") == first
            assert set((await ok(session, "file_search", pattern="**/*.py")).splitlines()) == {"a.py", "sub/b.py"}


async def test_file_search_returns_what_it_found_and_names_what_it_could_not_read(project: Path) -> None:
    """A directory no one may read (mode 000; ripgrep runs sandboxed without capabilities, so also for root)
    does not fail the search: the files found come back, and one line says what was not searched."""
    (project / "open").mkdir()
    (project / "open" / "a.py").write_text("a = 1\n")
    locked = project / "locked"
    locked.mkdir()
    (locked / "b.py").write_text("b = 1\n")
    locked.chmod(0)
    try:
        async with serve(project) as session:
            found = await ok(session, "file_search", pattern="**/*.py")
    finally:
        locked.chmod(0o755)
    assert found.splitlines()[0] == "open/a.py", found
    assert found.splitlines()[-1].startswith("[1 path(s) could not be searched (first: ./locked: Permission"), found
