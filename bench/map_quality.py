"""Repo-map quality on real history: how often the map shows the files a change really touched.

For each of the latest non-merge commits that change 2–8 source files (files the map reads), the file with
the most changed lines is the focus F; the others that already existed are what the map should show. At the
commit's parent, a fresh `loomkin-mcp` answers `repo_map(focus_files=[F])`, Aider 0.86.2's RepoMap gets F as
its chat file and the same file list, and a naive baseline lists F's directory (the other files there, their
definitions in path order, the same renderer). Co-change recall is the share of those files a map names,
averaged over commits, at 1,024 and 2,048 tokens. Commits are picked by that rule only, never by hand.

Readability, on each repository's HEAD with no focus (the map of a new conversation), ours and Aider's at the
same budgets: the share of member lines (an indented definition: a method, a nested function, an Elixir `def`)
that show their owner — the line that opens the enclosing class or module (or the `if` a definition sits in)
is above them in the same file block — and the share of the public API the map defines on a line: the names
a Python package's `__init__.py` exports (`__all__`, else what it imports from its own modules or defines),
the modules of a Mix project's `lib/*.ex` and `lib/*/*.ex`, a JavaScript package's entry exports (the rule
of `loomkin_mcp.repomap.public_surface`, which our map leads with).

Repositories: `--repos` or LOOMKIN_MAP_REPOS (comma-separated git directories or bundles); by default the
bundles in ../shared/corpora, or, where that folder is absent, this project's own history.
Each side keeps its cache between the commits of a repository, as a working copy would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _common import load, stdio_session, summary

from loomkin_mcp.repomap import Ranked, SourceLines, extract, grammar_for, public_surface, render

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
CORPORA = PROJECT.parent / "shared" / "corpora"
LOOMKIN = str(Path(sys.executable).parent / "loomkin-mcp")
# Absolute (not resolved: that would leave the venv), since Aider runs from bench/ to import the shared helpers.
AIDER_PYTHON = os.path.abspath(os.environ.get("AIDER_PYTHON", str(HERE / ".venv-aider" / "bin" / "python")))
BUDGETS = (1024, 2048)
GOALS = {1024: 0.60, 2048: 0.70}
AIDER_FACTOR = 1.5
FILES_CHANGED = range(2, 9)
OWNER_GOAL = 0.95
PUBLIC_GOAL_AT_LARGEST = 0.30
# A line that defines something, as both maps show it (ours `  12│ code`, Aider's `│code`): its indentation
# and the name it defines (Elixir's module names keep their dots).
_DEFINES = re.compile(
    r"^(?P<indent>\s*)(?:(?:export\s+|declare\s+)*(?:default\s+)?(?:async\s+)?(?:def|defp|defmacrop?|defmodule|"
    r"defprotocol|defimpl|class|function|func|fn|interface|struct|impl|module|trait|type|enum)\s+[\"']?(?P<name>[\w.$]+)|"
    r"(?P<assigned>[A-Za-z_]\w*)\s*(?::[^=]*)?=[^=])"
)


@dataclass
class Change:
    commit: str
    parent: str
    focus: str
    others: list[str]
    """The other source files the commit changed that existed at its parent."""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def picked_changes(repo: Path, count: int) -> list[Change]:
    """The latest non-merge commits changing 2–8 source files, at least one besides the focus already there."""
    changes: list[Change] = []
    for line in git(repo, "log", "--no-merges", "--format=%H %P", "HEAD").splitlines():
        commit, *parents = line.split()
        if len(parents) != 1:
            continue
        statuses = {}
        for row in git(repo, "diff-tree", "-r", "--no-renames", "--name-status", parents[0], commit).splitlines():
            status, path = row.split("\t", 1)
            if grammar_for(path):
                statuses[path] = status
        if len(statuses) not in FILES_CHANGED:
            continue
        sizes: dict[str, int] = {}
        for row in git(repo, "diff-tree", "-r", "--no-renames", "--numstat", parents[0], commit).splitlines():
            added, deleted, path = row.split("\t", 2)
            if path in statuses and statuses[path] == "M":
                sizes[path] = (int(added) if added != "-" else 0) + (int(deleted) if deleted != "-" else 0)
        if not sizes:
            continue
        focus = min(sizes, key=lambda path: (-sizes[path], path))
        others = sorted(path for path, status in statuses.items() if path != focus and status in "MD")
        if others:
            changes.append(Change(commit, parents[0], focus, others))
        if len(changes) == count:
            break
    return changes


_NUMBERED = re.compile(r"^\s*\d+│ ")


def file_lines(text: str, known: set[str]) -> list[tuple[str, str | None]]:
    """Each line of a map with the file it opens, if it opens one: a line that starts with a path (ours `path:`,
    Aider's `path:` or a bare `path`), or ours `  name:` indented below a `dir/` line."""
    lines: list[tuple[str, str | None]] = []
    directory = None
    for line in text.splitlines():
        words = line.split()
        path = None
        if _NUMBERED.match(line):
            pass  # a line of code (ours)
        elif words and line[0] not in " \t│⋮":
            directory = line[:-1] if line.endswith("/") and len(words) == 1 else None
            path = words[0].rstrip(":")
        elif directory is not None and line.startswith("  ") and line.endswith(":") and "│" not in line:
            path = f"{directory}/{line.strip().removesuffix(':')}"
        lines.append((line, path if path in known else None))
    return lines


def named_files(text: str, known: set[str]) -> set[str]:
    """The files a map names."""
    return {path for _, path in file_lines(text, known) if path is not None}


def code_blocks(text: str, known: set[str]) -> list[list[str]]:
    """The code lines a map shows, per file block."""
    blocks: list[list[str]] = []
    for line, path in file_lines(text, known):
        if path is not None:
            blocks.append([])
        elif blocks and (numbered := _NUMBERED.match(line)):
            blocks[-1].append(line[numbered.end() :])
        elif blocks and line.startswith("│"):
            blocks[-1].append(line[1:])
    return blocks


def readability(text: str, known: set[str], public: set[str]) -> tuple[int, int, float]:
    """(member lines that show their owner, member lines, share of `public` defined on a line)."""
    owned = members = 0
    shown: set[str] = set()
    for block in code_blocks(text, known):
        above: list[int] = []  # the indentation of each line shown so far in the block
        for code in block:
            indent = len(code.expandtabs(8)) - len(code.expandtabs(8).lstrip())
            match = _DEFINES.match(code)
            if match is not None:
                name = match["name"] or (match["assigned"] if indent == 0 else None)
                if name:
                    shown.add(name)
                if match["name"] and indent > 0:
                    members += 1
                    owned += any(level < indent for level in above)
            if code.strip():
                above.append(indent)
    return owned, members, len(shown & public) / len(public) if public else 0.0


# The quality of the whole map: a map asked for while a large project is still being indexed comes from part of it.
WHOLE_MAP = {"LOOMKIN_FIRST_MAP_MS": "0"}


async def no_focus_maps(root: Path, home: Path) -> dict[int, str]:
    env = {"XDG_CONFIG_HOME": str(home), "HOME": str(home)} | WHOLE_MAP
    maps = {}
    async with stdio_session(LOOMKIN, "--stdio", "--root", str(root), env=env) as session:
        for budget in BUDGETS:
            result = await session.call_tool("repo_map", {"max_tokens": budget})
            if result.is_error:
                raise SystemExit(f"repo_map failed at {root}: {result.content[0].text[:300]}")
            maps[budget] = result.content[0].text
    return maps


async def measure_readability(source: str, scratch: Path) -> list[dict]:
    name = repository_name(source)
    clone = scratch / f"{len(list(scratch.iterdir()))}-{name}-head"
    subprocess.run(["git", "clone", "-q", source, str(clone)], check=True)
    files = sorted(path for path in git(clone, "ls-files", "-z").split("\0") if grammar_for(path))
    known = set(files)
    tags = {}
    for path in files:
        data = (clone / path).read_bytes()
        if (found := extract(path, data, 0, len(data))) is not None:
            tags[path] = found

    def read(path: str) -> str:
        try:
            return (clone / path).read_text(errors="replace")
        except OSError:
            return ""

    public = {name for names in public_surface(tags, read).values() for name in names}
    (scratch / "home").mkdir(exist_ok=True)
    ours = await no_focus_maps(clone, scratch / "home")
    _, aider = aider_maps(clone, "-", files)
    rows = []
    for budget in BUDGETS:
        mine, theirs = readability(ours[budget], known, public), readability(aider[budget], known, public)
        owner_share = mine[0] / mine[1] if mine[1] else 1.0
        public_goal = max(1.25 * theirs[2], theirs[2] + 0.05, PUBLIC_GOAL_AT_LARGEST if budget == max(BUDGETS) else 0)
        rows.append({
            "measure": f"map readability, {name}, {budget:,} tokens, no focus ({len(public)} public names)",
            "reference": "Aider 0.86.2 RepoMap, no chat file",
            "ours_owner_lines": f"{mine[0]}/{mine[1]}",
            "reference_owner_lines": f"{theirs[0]}/{theirs[1]}",
            "ours_public": round(mine[2], 3),
            "reference_public": round(theirs[2], 3),
            "target": f"member lines with their owner ≥ {OWNER_GOAL:.0%}; public API ≥ {public_goal:.2f}",
            "met": owner_share >= OWNER_GOAL and mine[2] >= public_goal,
            "load": load(),
        })  # fmt: skip
    return rows


def naive_map(root: Path, focus: str, files: list[str], budget: int) -> str:
    """F's directory: the other files there, their definitions in path and line order, fit to the budget."""
    directory = os.path.dirname(focus)
    ranked = []
    tags_of = {}
    for path in sorted(f for f in files if os.path.dirname(f) == directory and f != focus):
        source = (root / path).read_bytes()
        tags = tags_of[path] = extract(path, source, 0, len(source))
        for name, line, _ in tags.definitions if tags else []:
            ranked.append(Ranked(0.0, path, line, name))
    ranked.sort(key=lambda item: (item.path, item.line))
    defined = {item.path: {line for _, line, _ in tags_of[item.path].definitions} for item in ranked}

    def read(path: str) -> SourceLines:
        return SourceLines((root / path).read_text(errors="replace").split("\n"))

    return render(ranked, budget, read, defined.__getitem__)


async def our_maps(root: Path, focus: str, home: Path) -> tuple[float, dict[int, str]]:
    """(ms from spawn to the last map, the map at each budget) from a fresh server process."""
    maps = {}
    started = time.perf_counter()
    env = {"XDG_CONFIG_HOME": str(home), "HOME": str(home)} | WHOLE_MAP
    async with stdio_session(LOOMKIN, "--stdio", "--root", str(root), env=env) as session:
        for budget in BUDGETS:
            result = await session.call_tool("repo_map", {"focus_files": [focus], "max_tokens": budget})
            text = result.content[0].text
            if result.is_error or not text.startswith("Repo map:"):
                raise SystemExit(f"repo_map failed at {root}: {text[:300]}")
            maps[budget] = text
        took = (time.perf_counter() - started) * 1000
    return took, maps


def aider_maps(root: Path, focus: str, files: list[str]) -> tuple[float, dict[int, str]]:
    """(ms from spawn to the end of Aider's process, the map at each budget)."""
    listing = root.parent / "aider-files.txt"
    listing.write_text("\n".join(files))
    started = time.perf_counter()
    done = subprocess.run(
        [AIDER_PYTHON, str(HERE / "_aider_focus_map.py"), str(root), focus, str(listing), *map(str, BUDGETS)],
        capture_output=True, text=True, check=False, cwd=HERE,
    )  # fmt: skip
    took = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"Aider's RepoMap failed: {done.stderr[-2000:]}")
    return took, {int(k): v for k, v in json.loads(done.stdout.splitlines()[-1]).items()}


async def measure(source: str, count: int, scratch: Path) -> list[dict]:
    name = repository_name(source)
    clone = scratch / f"{len(list(scratch.iterdir()))}-{name}"
    subprocess.run(["git", "clone", "-q", source, str(clone)], check=True)
    changes = picked_changes(clone, count)
    if not changes:
        raise SystemExit(f"{source}: no commit changes 2–8 source files")
    recalls: dict[str, dict[int, list[float]]] = {side: {b: [] for b in BUDGETS} for side in ("ours", "aider", "naive")}
    times: dict[str, list[float]] = {"ours": [], "aider": []}
    (scratch / "home").mkdir(exist_ok=True)
    details = []
    for change in changes:
        git(clone, "checkout", "-q", "-f", "--detach", change.parent)
        git(clone, "clean", "-qfdx", "-e", ".loomkin", "-e", ".aider.tags.cache*")
        files = sorted(path for path in git(clone, "ls-files", "-z").split("\0") if grammar_for(path))
        known = set(files)
        took, ours = await our_maps(clone, change.focus, scratch / "home")
        times["ours"].append(took)
        took, aider = aider_maps(clone, change.focus, files)
        times["aider"].append(took)
        naive = {budget: naive_map(clone, change.focus, files, budget) for budget in BUDGETS}
        found: dict[str, dict[int, list[str]]] = {}
        for side, maps in (("ours", ours), ("aider", aider), ("naive", naive)):
            found[side] = {}
            for budget in BUDGETS:
                hits = sorted(named_files(maps[budget], known) & set(change.others))
                found[side][budget] = hits
                recalls[side][budget].append(len(hits) / len(change.others))
        details.append({"commit": change.commit, "focus": change.focus, "others": change.others, "found": found})
    rows = []
    for budget in BUDGETS:
        ours, aider, naive = (statistics.mean(recalls[side][budget]) for side in ("ours", "aider", "naive"))
        rows.append({
            "measure": f"co-change recall, {name}, {budget:,} tokens, {len(changes)} commits",
            "reference": "Aider 0.86.2 RepoMap, F as chat file",
            "ours_recall": round(ours, 3),
            "reference_recall": round(aider, 3),
            "ratio": round(ours / aider, 2) if aider else None,
            "context": f"naive (F's directory) {naive:.2f}; from spawn to both maps: ours p50 "
            f"{statistics.median(times['ours']):.0f} ms, Aider {statistics.median(times['aider']):.0f} ms",
            "target": f"≥ {GOALS[budget]:.2f}, ≥ {AIDER_FACTOR}× Aider, above naive",
            "met": ours >= GOALS[budget] and ours >= AIDER_FACTOR * aider and ours > naive,
            "load": load(),
        })  # fmt: skip
    return [*rows, {"details": details, "ours_ms": summary(times["ours"]), "aider_ms": summary(times["aider"])}]


def repository_name(source: str) -> str:
    path = Path(source)
    if path == PROJECT:
        return "loomkin-mcp"
    if path.name in ("repo", ".git"):  # a mirror's git directory: `owner+name/repo`
        return path.parent.name.split("+")[-1]
    return path.name.removesuffix(".bundle")


def repositories(option: str | None) -> list[str]:
    given = option or os.environ.get("LOOMKIN_MAP_REPOS", "")
    if given:
        return [str(Path(part).resolve()) for part in given.split(",") if part]
    bundles = sorted(CORPORA.glob("*.bundle")) if CORPORA.is_dir() else []
    return [str(path) for path in bundles] or [str(PROJECT)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=25)
    parser.add_argument("--repos", help="comma-separated git directories or bundles")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    rows, details = [], {}
    with tempfile.TemporaryDirectory(prefix="loomkin-map-quality-") as scratch:
        for source in repositories(args.repos):
            *measured, extra = asyncio.run(measure(source, args.commits, Path(scratch)))
            rows += measured
            details[source] = extra
            rows += asyncio.run(measure_readability(source, Path(scratch)))
    result = {"rows": rows, "details": details}
    print(json.dumps({"rows": rows}, indent=2, ensure_ascii=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
