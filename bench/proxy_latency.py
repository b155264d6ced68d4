"""A proxied upstream call versus the same upstream called directly, in the same run.

Both clients are real MCP clients over stdio: one to `mcp-server-everything`, one to
`loomkin-mcp --stdio` re-exporting that server. Calls alternate between them.

Usage: python bench/proxy_latency.py [--calls N] [--json OUT]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import load, main, person, same_or_exit, stdio_session, summary
from mcp import ClientSession

REPO = Path(__file__).resolve().parent.parent
EVERYTHING = REPO / "node_modules" / ".bin" / "mcp-server-everything"
LOOMKIN = Path(sys.executable).parent / "loomkin-mcp"


async def timed_call(session: ClientSession, tool: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = await session.call_tool(tool, {"message": "ping"})
    elapsed = (time.perf_counter() - started) * 1000
    if result.is_error:
        raise SystemExit(f"{tool} failed: {result.content}")
    return elapsed, result.content[0].text


async def run(calls: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        (root / ".loomkin.toml").write_text(f'[mcp]\nservers = [{{ name = "everything", command = "{EVERYTHING}" }}]\n')
        env = person(Path(tmp) / "home", root)  # the person trusted this upstream
        async with (
            stdio_session(str(EVERYTHING)) as direct,
            stdio_session(str(LOOMKIN), "--stdio", "--root", str(root), env=env) as ours,
        ):
            with anyio.fail_after(30):
                while "everything__echo" not in {t.name for t in (await ours.list_tools()).tools}:
                    await anyio.sleep(0.1)
            for _ in range(20):  # warm both paths, and compare what they return
                _, direct_text = await timed_call(direct, "echo")
                _, our_text = await timed_call(ours, "everything__echo")
                same_or_exit("echo", our_text, direct_text)
            reference, proxied = [], []
            for _ in range(calls):
                reference.append((await timed_call(direct, "echo"))[0])
                proxied.append((await timed_call(ours, "everything__echo"))[0])
    added = statistics.median(proxied) - statistics.median(reference)
    return {
        "measure": "proxied upstream call (`everything__echo`)",
        "reference": "the same upstream's echo called directly",
        "calls": calls,
        "reference_ms": summary(reference),
        "ours_ms": summary(proxied),
        "added_ms_at_median": round(added, 3),
        "ratio": round(statistics.median(proxied) / statistics.median(reference), 2),
        "target": "≤ +0.5 ms at the median",
        "met": added <= 0.5,
        "load": load(),
        "samples": {"ours": proxied, "reference": reference},
    }


if __name__ == "__main__":
    main(__doc__, "calls", 500, lambda count: anyio.run(run, count))
