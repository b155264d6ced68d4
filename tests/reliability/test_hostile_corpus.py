"""The hostile corpus (`corpus/*.json`, grown by `grow_corpus.py`) against a real server under strace.

Every case must be refused with one clear sentence or handled; what decides "nothing escaped" is the
process audit (every program run and every file changed by the server and its children, from strace)
and the disk (a snapshot of everything outside the project, canary markers), never our own messages.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from process_audit import Execution, Trace, files_containing, inside, read_trace, strace_launcher
from reliability_figures import record

from conftest import GIT_IDENTITY, LOOMKIN, git_init, serve, snapshot, text_of, write_rules

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "corpus"
CALL_TIMEOUT = 30
SECRET = f"LOOMKIN-CANARY-{uuid.uuid4().hex}"
CANARY_NAME = "canary-outside.txt"
SHELL_PATTERNS = ["echo *", "ls", "git status", "git log *", "cat a.txt"]
PROTECTED = (".git", "LOOMKIN.md", ".loomkin.toml")
CONFIG = """\
[permissions]
auto_approve = ["file_read", "file_write", "file_edit", "directory_list", "file_search", "content_search", "git"]

[lsp]
enabled = false
"""


@dataclass
class Layout:
    root: Path
    outside: Path
    sibling: Path
    home: Path
    audit: Path

    @property
    def pwned(self) -> Path:
        return self.outside / "pwned"

    def fill(self, text: str) -> str:
        for name in ("root", "outside", "sibling", "pwned"):
            text = text.replace("{" + name + "}", str(getattr(self, name)))
        return text

    def fill_all(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.fill(value)
        if isinstance(value, list):
            return [self.fill_all(item) for item in value]
        if isinstance(value, dict):
            return {key: self.fill_all(item) for key, item in value.items()}
        return value

    def outside_state(self, protected: tuple[str, ...] = PROTECTED) -> dict[str, str]:
        """Everything outside the project, plus the project's protected files."""
        return snapshot(self.outside, self.sibling, self.home, *(self.root / name for name in protected))


def lay_out(tmp: Path) -> Layout:
    layout = Layout(tmp / "proj", tmp / "outside", tmp / "proj-evil", tmp / "home", tmp / "audit")
    for directory in (layout.root, layout.outside, layout.sibling, layout.home, layout.audit):
        directory.mkdir()
    for directory in (layout.outside, layout.sibling, layout.home):
        (directory / "secret.txt").write_text(SECRET + "\n")
        (directory / CANARY_NAME).write_text(SECRET + "\n")
    root = layout.root
    git_init(root)
    (root / "a.txt").write_text("alpha\n")
    (root / "src").mkdir()
    (root / "src" / "m.py").write_text("x = 1\n")
    write_rules(root, "# Project\n\n## Allowed Operations\n- Shell: " + ", ".join(f"`{p}`" for p in SHELL_PATTERNS))
    (root / ".loomkin.toml").write_text(CONFIG)
    env = os.environ | GIT_IDENTITY
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "init"], check=True, env=env)
    for name, target in [("out", "../outside"), ("chain", "chain2"), ("chain2", "../outside"), ("loop1", "loop2"),
                         ("loop2", "loop1"), ("zero", "/dev/zero"), ("inlink", "src")]:  # fmt: skip
        (root / name).symlink_to(target)
    os.mkfifo(root / "fifo")
    if os.geteuid() == 0:  # a device node in the project: a copy of /dev/zero, endless to read
        os.mknod(root / "zerodev", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    return layout


def load(name: str) -> list[Any]:
    return json.loads((CORPUS / f"{name}.json").read_text())


class Person:
    """The person behind the editor, approving everything they are asked."""

    async def __call__(self, context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"approve": True})


@dataclass
class Tally:
    calls: int = 0
    refused: int = 0
    handled: int = 0

    async def call(self, session: ClientSession, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """One call that must answer in time: an error is one clear sentence, never a traceback."""
        with anyio.fail_after(CALL_TIMEOUT):
            result = await session.call_tool(tool, arguments)
        self.calls += 1
        text = text_of(result)
        if result.is_error:
            self.refused += 1
            assert text.strip() and "Traceback" not in text and "\n" not in text.strip(), (tool, arguments, text)
        else:
            self.handled += 1
        return result


def audited(layout: Layout, person: Person | None = None) -> AbstractAsyncContextManager[ClientSession]:
    """The server under strace, with HOME outside the project and no byte-code writes to muddy the log."""
    env = {"HOME": str(layout.home), "PYTHONDONTWRITEBYTECODE": "1"}
    launcher = strace_launcher(layout.audit / "strace.log")
    return serve(layout.root, elicitation=person, env=env, launcher=launcher)


# Inside bubblewrap these are the sandbox's own (its /dev and /proc, its set-up mounts): writes there never
# reach the machine's. (A command's temporary files go to a directory of its own inside the project.)
_SANDBOX_PRIVATE = ("/dev/", "/proc/", "/newroot/", "/oldroot/")


def escapes_in(trace: Trace, layout: Layout, programs_allowed: Callable[[Execution], bool]) -> list[str]:
    """Everything the process tree did outside the rules: programs, changed files, working directories.

    A command in the sandbox is judged by what runs inside it (bubblewrap itself passes when the command
    it was given would); its setup and its private /tmp are the sandbox's own. Every program but the server
    itself must run in the sandbox: shell commands, git (the tool, the scanner, the trust check) and ripgrep.
    """
    found = []
    for execution in trace.executions:
        program = os.path.basename(execution.program)
        if program == "bwrap":
            inner = execution.argv[execution.argv.index("--") + 1 :] if "--" in execution.argv else []
            execution = Execution(execution.pid, inner[0] if inner else "bwrap", inner)
        if execution.argv == ["true"] and trace.sandboxed(execution.pid):
            continue  # the server's one check that bubblewrap works here
        if execution.program != LOOMKIN and not programs_allowed(execution):
            found.append(f"ran {execution.argv!r}")
        elif execution.program != LOOMKIN and not trace.sandboxed(execution.pid):
            found.append(f"ran {execution.argv!r} outside the sandbox")
    for change in trace.changes:
        if change.path in ("/dev/null", "/dev/tty"):
            continue
        sandboxed = trace.sandboxed(change.pid)
        by_bwrap = sandboxed and os.path.basename(trace.program_of(change.pid) or "bwrap") == "bwrap"
        if by_bwrap:
            continue  # bubblewrap building the sandbox's mount namespace
        if not inside(change.path, layout.root):
            if not (sandboxed and change.path.startswith(_SANDBOX_PRIVATE)):
                found.append(f"{change.syscall} {change.path} outside the project")
            continue
        relative = Path(change.path).relative_to(layout.root).parts
        by_git = os.path.basename(trace.program_of(change.pid) or "") == "git"
        if relative and relative[0] in PROTECTED and not (by_git and relative[0] == ".git"):
            found.append(f"{change.syscall} {change.path}, a protected file")
    found += [
        f"chdir {c.path} outside the project"
        for c in trace.chdirs
        if not inside(c.path, layout.root) and not trace.sandboxed(c.pid)
    ]
    found += [
        f"opened an {family} socket"
        for pid, family in trace.sockets
        if family in ("AF_INET", "AF_INET6") and not trace.sandboxed(pid)  # the sandbox has no network
    ]
    return found


async def test_hostile_paths_never_escape(tmp_path: Path) -> None:
    layout = lay_out(tmp_path)
    cases = load("paths")
    assert len(cases) >= 300
    before = layout.outside_state()
    tally = Tally()
    written_inside = 0
    async with audited(layout) as session:
        for number, raw in enumerate(cases):
            path = layout.fill(raw)
            mark = f"MARK-{number}-{uuid.uuid4().hex}"
            result = await tally.call(session, "file_write", {"file_path": path, "content": mark})
            hits = [hit for tree in (layout.root, layout.outside, layout.sibling, layout.home)
                    for hit in files_containing(tree, mark.encode())]  # fmt: skip
            if result.is_error:
                assert hits == [], (raw, hits)
            else:
                # Handled: the one file written is a real file inside the project, outside protected places.
                assert len(hits) == 1 and inside(os.path.realpath(hits[0]), layout.root), (raw, hits)
                assert hits[0].relative_to(layout.root).parts[0] not in PROTECTED, (raw, hits)
                written_inside += 1
            await tally.call(session, "file_edit", {"file_path": path, "old_string": SECRET, "new_string": mark})
            for tool, arguments in [
                ("file_read", {"file_path": path}),
                ("content_search", {"pattern": "CANARY-[0-9a-f]+", "path": path}),
                ("directory_list", {"path": path}),
                ("file_search", {"pattern": "**/*", "path": path, "include_hidden": True}),
            ]:
                result = await tally.call(session, tool, arguments)
                assert SECRET not in text_of(result) and CANARY_NAME not in text_of(result), (tool, raw)
    assert layout.outside_state() == before
    assert stat.S_ISFIFO((layout.root / "fifo").lstat().st_mode), "a write replaced the FIFO"
    if os.geteuid() == 0:
        assert stat.S_ISCHR((layout.root / "zerodev").lstat().st_mode), "a write replaced the device node"
    trace = read_trace(layout.audit / "strace.log", layout.root)
    escapes = escapes_in(trace, layout, lambda e: os.path.basename(e.program) == "rg" or _servers_own_git(e))
    assert escapes == [], escapes[:20]
    record(
        "hostile corpus", f"{len(cases)} paths × 6 tools (file_write, file_edit, file_read, content_search, "
        "directory_list, file_search)", calls=tally.calls, refused=tally.refused, handled=tally.handled,
        written_inside_the_project=written_inside, escapes=0, hangs=0, programs_run=len(trace.executions),
    )  # fmt: skip


def _servers_own_git(execution: Execution) -> bool:
    """The server's own git runs: its reads and the git tool start `git --no-pager`; the trust check lists the
    repository's config (`git --git-dir=… --work-tree=… config --null --list …`, which runs nothing)."""
    argv = execution.argv
    return _git_only(execution) and (
        argv[:2] == ["git", "--no-pager"]
        or (argv[1:2] and argv[1].startswith("--git-dir=") and argv[3:] == [
            "config", "--null", "--list", "--show-scope", "--show-origin"])
    )  # fmt: skip


def _allowed_command(execution: Execution) -> bool:
    line = " ".join(execution.argv)
    return any(fnmatchcase(line, pattern) for pattern in SHELL_PATTERNS) or _servers_own_git(execution)


async def run_audited(
    layout: Layout, tool: str, calls: list[dict[str, Any]], allowed: Callable[[Execution], bool], what: str,
    protected: tuple[str, ...] = PROTECTED,
) -> None:  # fmt: skip
    """Each call under strace with a person approving everything asked (the rules gate before the person is
    asked, so approving cannot widen them); then nothing outside changed and nothing ran beyond `allowed`."""
    before = layout.outside_state(protected)
    tally = Tally()
    async with audited(layout, Person()) as session:
        for arguments in calls:
            await tally.call(session, tool, arguments)
            assert not layout.pwned.exists(), arguments
    assert layout.outside_state(protected) == before
    escapes = escapes_in(read_trace(layout.audit / "strace.log", layout.root), layout, allowed)
    assert escapes == [], escapes[:20]
    record("hostile corpus", what, calls=tally.calls, refused=tally.refused, handled=tally.handled, escapes=0,
           hangs=0)  # fmt: skip


async def test_hostile_shell_commands_run_nothing_outside_the_rules(tmp_path: Path) -> None:
    layout = lay_out(tmp_path)
    cases = load("shell")
    calls = [{"command": layout.fill(raw), "timeout": 20_000} for raw in cases]
    what = f"{len(cases)} shell commands against `Shell:` patterns {', '.join(SHELL_PATTERNS)}"
    await run_audited(layout, "shell", calls, _allowed_command, what)


def _git_only(execution: Execution) -> bool:
    return os.path.basename(execution.program) == "git" or "/git-core/" in execution.program


async def test_git_argument_smuggling_runs_nothing_but_git(tmp_path: Path) -> None:
    layout = lay_out(tmp_path)
    cases = load("git")
    not_git = tuple(name for name in PROTECTED if name != ".git")  # git operations change .git itself
    what = f"{len(cases)} git calls smuggling options, pathspec magic and outside paths in paths, ref and message"
    await run_audited(layout, "git", [layout.fill_all(case) for case in cases], _git_only, what, not_git)


def test_the_audit_sees_what_a_process_tree_does(tmp_path: Path) -> None:
    """The judge itself: a child that runs programs, writes outside and into .git, leaves the root and opens
    a network socket is caught on every count; what it does inside the project is not."""
    layout = lay_out(tmp_path)
    log = layout.audit / "strace.log"
    script = (
        f"touch {layout.pwned} && mkdir inner && ln -s ../outside inner/link && mv a.txt b.txt "
        f"&& echo x > .git/evil && cd {layout.outside} && touch there "
        f"&& {sys.executable} -c 'import socket; socket.socket(socket.AF_INET6)'"
    )
    subprocess.run([*strace_launcher(log), "sh", "-c", script], cwd=layout.root, check=True)
    found = escapes_in(read_trace(log, layout.root), layout, lambda e: e.program.endswith("/sh"))
    text = "\n".join(found)
    for expected in ["ran ['touch'", f"{layout.pwned} outside", ".git/evil, a protected file", "ran ['mkdir'",
                     f"chdir {layout.outside} outside", f"{layout.outside}/there outside",
                     "opened an AF_INET6 socket"]:  # fmt: skip
        assert expected in text, (expected, found)
    changes = [line for line in found if not line.startswith("ran ")]
    assert not any("b.txt" in line or "inner/link" in line for line in changes), changes  # inside: allowed


THREAD_REUSES_A_NUMBER = """
import os, subprocess, threading
held, ready, go = [], threading.Event(), threading.Event()
def starter():
    number = os.open("/dev/null", os.O_RDONLY)
    os.close(number)
    held.append(number)
    ready.set()
    go.wait()
    subprocess.run(["sh", "-c", f"cd /proc/self/fd/{number}"], pass_fds=[number], check=True)
thread = threading.Thread(target=starter)
thread.start()
ready.wait()
assert os.open(SRC, os.O_RDONLY | os.O_DIRECTORY) == held[0]
go.set()
thread.join()
"""

DUP_REUSES_A_NUMBER = """
import os, subprocess
source = os.open(SRC, os.O_RDONLY | os.O_DIRECTORY)
number = os.open("/dev/null", os.O_RDONLY)
os.close(number)
assert os.dup(source) == number
subprocess.run(["sh", "-c", f"cd /proc/self/fd/{number}"], pass_fds=[number], check=True)
"""


@pytest.mark.parametrize("program", [THREAD_REUSES_A_NUMBER, DUP_REUSES_A_NUMBER], ids=["thread", "dup"])
def test_the_audit_follows_a_descriptor_number_to_what_it_holds_now(tmp_path: Path, program: str) -> None:
    """A number once /dev/null's, then the project's `src` — opened by another thread of the process, or made by
    `os.dup` (an fcntl) — is where a child's `chdir("/proc/self/fd/N")` lands: no escape there."""
    layout = lay_out(tmp_path)
    log = layout.audit / "strace.log"
    source = f"SRC = {str(layout.root / 'src')!r}\n" + program
    subprocess.run([*strace_launcher(log), sys.executable, "-c", source], cwd=layout.root, check=True)
    trace = read_trace(log, layout.root)
    assert [c.path for c in trace.chdirs] == [str(layout.root / "src")]
