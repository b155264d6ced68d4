"""Repository intelligence on a large tree no one here wrote: the Python standard library.

One run measures, interleaved and repeated:
- content_search through a real MCP client over stdio vs `rg` run directly (same patterns;
  `--sort path` on both, as content_search needs it for deterministic, capped results);
- repo map cold build (index + rank + render at the same token budget) vs Aider's `RepoMap`
  on the same files, Aider installed in its own environment (`AIDER_PYTHON`);
- the refresh after a one-file change (re-index that file, re-rank, re-render).

Usage: python bench/repo_intel.py [--repetitions N] [--json OUT]
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import copy_corpus, main, stdio_session, summary

BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve().parent
AIDER_PYTHON = os.environ.get("AIDER_PYTHON", str(HERE / ".venv-aider" / "bin" / "python"))
BUDGET = 2048
PATTERNS = [r"class \w+Error\b", r"^import (os|sys)$", "TODO", r"raise NotImplementedError", r"lambda \w+:"]


def rg_direct(root: Path, pattern: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(BIN / "rg"), "--line-number", "--no-heading", "--sort", "path", "--no-require-git",
         "--no-ignore-parent", "--regexp", pattern],
        cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    return (time.perf_counter() - started) * 1000


async def search_benchmark(root: Path, repetitions: int) -> dict:
    ours, reference = [], []
    async with stdio_session(str(BIN / "loomkin-mcp"), "--stdio", "--root", str(root)) as session:
        for _ in range(repetitions):
            for pattern in PATTERNS:
                reference.append(rg_direct(root, pattern))
                started = time.perf_counter()
                result = await session.call_tool("content_search", {"pattern": pattern, "max_results": 5000})
                ours.append((time.perf_counter() - started) * 1000)
                if result.is_error or "stopped at" in result.content[0].text:
                    raise SystemExit(f"{pattern}: capped or failed, pick a narrower pattern")
    ratio = statistics.median(ours) / statistics.median(reference)
    return {
        "measure": f"content_search on the stdlib, {len(PATTERNS)} patterns × {repetitions} (MCP over stdio)",
        "reference": "rg run directly, same patterns and --sort path",
        "ours_ms": summary(ours),
        "reference_ms": summary(reference),
        "ratio": round(ratio, 2),
        "target": "≤ 1.15× rg",
        "met": ratio <= 1.15,
    }


def our_cold_build(root: Path) -> tuple[float, list[str]]:
    from loomkin_mcp.repomap import RepoIndex, rank_definitions, render, render_limit

    shutil.rmtree(root / ".loomkin", ignore_errors=True)
    names = list_files(root)
    started = time.perf_counter()
    index = RepoIndex(root, root / ".loomkin" / "repomap" / "tags.json", lambda: names)
    index.build()
    ranked = rank_definitions(index.tags, {}, frozenset(), render_limit(BUDGET))
    text = render(ranked, BUDGET, lambda name: (root / name).read_text(errors="replace").split("\n"))
    elapsed = (time.perf_counter() - started) * 1000
    assert text
    return elapsed, sorted(index.tags)


def list_files(root: Path) -> list[str]:
    from loomkin_mcp.repomap import grammar_for

    listed = subprocess.run(
        [str(BIN / "rg"), "--files", "--no-require-git", "--no-ignore-parent"],
        cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [name for name in listed.stdout.splitlines() if grammar_for(name)]


def aider_cold_build(root: Path, files: list[str]) -> float:
    for cache in root.glob(".aider.tags.cache*"):
        shutil.rmtree(cache, ignore_errors=True)
    listing = root.parent / "aider-files.txt"
    listing.write_text("\n".join(files))
    done = subprocess.run(
        [AIDER_PYTHON, str(HERE / "_aider_repomap.py"), str(root), str(BUDGET), str(listing)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"Aider's RepoMap failed: {done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1]) * 1000


def refresh_after_change(root: Path, repetitions: int) -> dict:
    from loomkin_mcp.repomap import RankEngine, RepoIndex, render, render_limit

    names = list_files(root)
    index = RepoIndex(root, root / ".loomkin" / "repomap" / "tags.json", lambda: names)
    index.build()
    engine = RankEngine()
    engine.rank(index.tags, {}, frozenset(), render_limit(BUDGET))
    target = root / "json" / "encoder.py"  # in the smoke corpus too
    updates, renders = [], []
    for n in range(repetitions * 5):
        with target.open("a") as handle:
            handle.write(f"\n\ndef added_by_benchmark_{n}():\n    return {n}\n")
        started = time.perf_counter()
        index.update(["json/encoder.py"])
        middle = time.perf_counter()
        ranked = engine.rank(index.tags, {}, frozenset(), render_limit(BUDGET))
        render(ranked, BUDGET, lambda name: (root / name).read_text(errors="replace").split("\n"))
        done = time.perf_counter()
        updates.append((middle - started) * 1000)
        renders.append((done - middle) * 1000)
    totals = [u + r for u, r in zip(updates, renders, strict=True)]
    return {
        "measure": "repo map refresh after a one-file change (re-index + re-rank + re-render)",
        "ours_ms": summary(totals),
        "index_update_ms": summary(updates),
        "rank_and_render_ms": summary(renders),
        "target": "≤ 50 ms",
        "met": statistics.median(totals) <= 50,
    }


def run(repetitions: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "stdlib"
        copy_corpus(root)
        search = anyio.run(search_benchmark, root, repetitions)
        ours, aider = [], []
        files: list[str] = []
        for _ in range(repetitions):
            elapsed, files = our_cold_build(root)
            ours.append(elapsed)
            aider.append(aider_cold_build(root, files))
        speedup = statistics.median(aider) / statistics.median(ours)
        cold = {
            "measure": f"repo map cold build, {len(files)} files, {BUDGET} tokens",
            "reference": "Aider 0.86.2 RepoMap, same files and budget",
            "ours_ms": summary(ours),
            "reference_ms": summary(aider),
            "speedup": round(speedup, 2),
            "target": "≥ 3× faster than Aider's RepoMap",
            "met": speedup >= 3,
        }
        refresh = refresh_after_change(root, repetitions)
    return {"corpus": "Python standard library (without site-packages)", "rows": [search, cold, refresh]}


if __name__ == "__main__":
    main(__doc__, "repetitions", 3, run)
