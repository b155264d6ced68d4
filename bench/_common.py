"""What every benchmark script shares: summaries of timings and the command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def summary(values: list[float]) -> dict[str, float]:
    """Median, p95, p99, min and max of timings in milliseconds, and how many there were."""
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(_percentile(ordered, 0.95), 3),
        "p99": round(_percentile(ordered, 0.99), 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
        "n": len(ordered),
    }


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(max(math.ceil(len(ordered) * fraction) - 1, 0), len(ordered) - 1)]


def load() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages, recorded with each row (2 cores: above 2 is contention)."""
    return [round(value, 2) for value in os.getloadavg()]


def same_or_exit(what: str, ours: object, reference: object) -> None:
    """Both sides must return the same thing before their timings mean anything."""
    if ours != reference:
        mine, theirs = str(ours), str(reference)
        first = next(
            (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b), min(len(mine), len(theirs))
        )
        start = max(0, first - 200)
        shown = f"{mine[start : first + 200]!r} vs {theirs[start : first + 200]!r}"
        raise SystemExit(f"{what}: loomkin-mcp and the reference disagree from character {first}: {shown}")


@asynccontextmanager
async def stdio_session(command: str, *args: str, env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    """A real MCP client over stdio to `command args`, initialized; the server's stderr discarded, or written to
    the file $BENCH_SERVER_LOG names (with `--log-level debug` among `args`, to see where a slow call went).

    `env` is added to the environment the SDK gives servers (which leaves most of ours out)."""
    params = StdioServerParameters(command=command, args=list(args), env=(dict(os.environ) | env) if env else None)
    with open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            yield session


def person(home: Path, root: Path, config: str = "") -> dict[str, str]:
    """The environment of a person whose own config (in `home`, an XDG_CONFIG_HOME of the bench's, never the
    real one) is `config` and who trusted what `root`'s files ask for, as `loomkin-mcp trust --yes` records."""
    (home / "loomkin").mkdir(parents=True, exist_ok=True)
    (home / "loomkin" / "loomkin.toml").write_text(config)
    env = {"XDG_CONFIG_HOME": str(home)}
    loomkin = Path(sys.executable).parent / "loomkin-mcp"
    subprocess.run([str(loomkin), "trust", "--yes", "--root", str(root)], env=os.environ | env, check=True,
                   capture_output=True)  # fmt: skip
    return env


def copy_corpus(target: Path) -> None:
    """The Python standard library (without site-packages), or only the parts named in
    LOOMKIN_BENCH_CORPUS (comma-separated, e.g. `json,email`) for the smoke run."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    ignore = shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc")
    parts = [part for part in os.environ.get("LOOMKIN_BENCH_CORPUS", "").split(",") if part]
    if not parts:
        shutil.copytree(stdlib, target, ignore=ignore, symlinks=True)
        return
    for part in parts:
        shutil.copytree(stdlib / part, target / part, ignore=ignore, symlinks=True)


def main(doc: str, count_option: str, default_count: int, run: Callable[[int], dict[str, Any]]) -> None:
    """Parse `--<count_option> N --json OUT`, run, print the result and write it to OUT."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{count_option}", type=int, default=default_count, dest="count")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = run(args.count)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
