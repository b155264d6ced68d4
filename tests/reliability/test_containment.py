"""Containment: with `Shell: git *` — the README's own example — and a person approving every call, the model
still cannot run another program, write outside the project, change git's config or loomkin's files, read a
file outside, leave a process behind, or dodge a denied pattern by spelling.

Judged as the hostile corpus is: the strace audit of the whole process tree (into the sandbox), a snapshot
of everything outside the project and of the protected files, and the processes left afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from process_audit import Execution, read_trace
from reliability_figures import record
from test_hostile_corpus import SECRET, Person, Tally, _git_only, _servers_own_git, audited, escapes_in, lay_out

from conftest import free_port, processes, text_of, write_rules

pytestmark = pytest.mark.anyio

RULES = """\
# Project
## Allowed Operations
- Shell: `git *`
## Denied Operations
- Shell: `git reset --hard*`, `git clean*`
"""
# Never-changing inside the project: loomkin's files and what makes git run programs.
PROTECTED = ("LOOMKIN.md", ".loomkin.toml", ".git/config", ".git/hooks")

WRITES_AND_PROGRAMS = [
    'git config alias.pwn "!touch {pwned}"',
    "git pwn",
    'git config core.fsmonitor "touch {pwned}"',
    'git config --global core.pager "touch {pwned}"',
    'git config --global alias.pwn2 "!touch {pwned}"',
    'git config --file .loomkin.toml mcp.server_enabled "false"',
    'git config --file LOOMKIN.md a.b "c"',
    'git config --file .git/config alias.pwn3 "!touch {pwned}"',
    'git config -f .git/hooks/pre-commit a.b "c"',
    "git archive -o {outside}/x.tar HEAD",
    "git archive --output=../outside/y.tar HEAD",
    "git worktree add {outside}/wt",
    "git bundle create {outside}/b.bundle HEAD",
    "git clone . {outside}/clone",
    "git init {outside}/fresh",
    "git init {home}/fresh",
    "git update-ref refs/heads/x HEAD",
    "git -c core.pager=touch log",
    "git submodule foreach touch {pwned}",
]
READS_OUTSIDE = [
    "git diff --no-index {outside}/secret.txt /dev/null",
    "git commit -F {outside}/secret.txt",
    "git commit --file=../outside/secret.txt",
    "git hash-object -w {outside}/secret.txt",
    "git config --file {home}/secret.txt --list",
]
DENIED_DODGES = [
    "git reset --har",
    "git -P reset --hard",
    "git --no-pager clean -f",
    "git reset -q --hard HEAD",
    "git reset --hard=HEAD",
    "git clean -fdx",
    "git -c x=y clean -n",
    "git --no-pager reset --h",
]


def _git_but_no_reset_or_clean(execution: Execution) -> bool:
    words = [word for word in execution.argv[1:] if not word.startswith("-")]
    denied = words[:1] in (["reset"], ["clean"]) and not _servers_own_git(execution)
    return _git_only(execution) and not denied


async def test_git_star_cannot_run_write_read_outside_or_linger(tmp_path: Path) -> None:
    layout = lay_out(tmp_path)
    write_rules(layout.root, RULES)
    port = free_port()
    daemon = f"git daemon --detach --enable=receive-pack --reuseaddr --listen=127.0.0.1 --port={port} --export-all ."
    commands = [layout.fill(c.replace("{home}", str(layout.home))) for c in WRITES_AND_PROGRAMS + READS_OUTSIDE]
    commands += [daemon, *DENIED_DODGES]
    before = layout.outside_state(PROTECTED)
    tally = Tally()
    async with audited(layout, Person()) as session:
        for command in commands:
            result = await tally.call(session, "shell", {"command": command, "timeout": 20_000})
            assert SECRET not in text_of(result), command
            if command in DENIED_DODGES:
                assert result.is_error and "denied" in text_of(result), (command, text_of(result))
        # A git status of the git tool after the fsmonitor attempt, and the commit scanner's own reads.
        await tally.call(session, "git", {"operation": "status"})
        await tally.call(session, "decision_query", {"query_type": "recent_decisions"})
    assert not layout.pwned.exists()
    assert layout.outside_state(PROTECTED) == before
    lingering = processes("--enable=receive-pack") + processes(str(layout.outside))
    assert lingering == [], lingering
    escapes = escapes_in(read_trace(layout.audit / "strace.log", layout.root), layout, _git_but_no_reset_or_clean)
    assert escapes == [], escapes[:20]
    record(
        "containment", f"{len(commands)} git commands under `Shell: git *` (config, aliases, archive, worktree, "
        "bundle, clone, init, daemon, reads outside, denied-pattern dodges), every call approved",
        calls=tally.calls, refused=tally.refused, ran=tally.handled, escapes=0, processes_left=len(lingering),
        outside_changes=0,
    )  # fmt: skip
    assert os.path.exists(layout.root / ".git" / "config")
