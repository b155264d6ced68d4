"""What every benchmark script shares: summaries of timings and the command line."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any


def summary(values: list[float]) -> dict[str, float]:
    """Median, p99, min and max of timings in milliseconds."""
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 3),
        "p99": round(ordered[max(int(len(ordered) * 0.99) - 1, 0)], 3),
        "min": round(ordered[0], 3),
        "max": round(ordered[-1], 3),
    }


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
