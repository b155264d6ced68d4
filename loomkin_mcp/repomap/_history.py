"""Files changed together in the project's history: a change to one of them often needs the others."""

from __future__ import annotations

from collections.abc import Container, Iterable

# A commit touching more files than this (a rename, a reformat, a dependency bump) says little about pairs.
MAX_FILES_PER_COMMIT = 30


def commits_of_log(log: str) -> list[list[str]]:
    """Each commit's files from `git log --format=%x00 --name-only` output, newest first."""
    commits = []
    for entry in log.split("\0"):
        files = [line for line in entry.splitlines() if line and not line.startswith('"')]
        if 1 < len(files) <= MAX_FILES_PER_COMMIT:
            commits.append(files)
    return commits


def co_changed(commits: Iterable[list[str]], focus: Container[str], known: Container[str]) -> dict[str, float]:
    """How strongly each known file changed together with the focus files: each commit that changed a focus
    file shares one unit among the other files it changed."""
    weights: dict[str, float] = {}
    for files in commits:
        touched = [path for path in files if path in focus]
        if not touched:
            continue
        others = [path for path in files if path not in focus and path in known]
        for path in others:
            weights[path] = weights.get(path, 0.0) + len(touched) / (len(files) - 1)
    return weights
