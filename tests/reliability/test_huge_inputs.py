"""Huge inputs from the corpus: 10 MB edit strings, 1 GB files, configuration bombs.

Judged from outside: what the server process read (`/proc/<pid>/io`), its peak memory, what is on disk
afterwards, and for a config how the process ended — never by trusting the server's own words.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from reliability_figures import record

from conftest import LOOMKIN, git_init, proc_number, processes, serve, server_env, text_of

pytestmark = pytest.mark.anyio

CORPUS = Path(__file__).parent / "corpus"
GB = 1024**3
MB = 1024**2
# Generous bounds that a whole read of a 1 GB file cannot meet.
MAX_READ_PER_CALL = 256 * MB
MAX_PEAK_RSS = 768 * MB


def expand(value: Any) -> Any:
    """The corpus's {"repeat": s, "times": n} stands for s * n."""
    if isinstance(value, dict) and set(value) == {"repeat", "times"}:
        return value["repeat"] * value["times"]
    if isinstance(value, dict):
        return {key: expand(item) for key, item in value.items()}
    return value


def _sparse(path: Path, lines: int) -> None:
    """`lines` text lines, then a hole up to 1 GB: a 1 GB file that costs no disk."""
    with open(path, "w") as handle:
        handle.writelines(f"line {n}\n" for n in range(1, lines + 1))
        handle.truncate(GB)


async def test_ten_megabyte_edits_and_gigabyte_files(project: Path) -> None:
    (project / ".loomkin.toml").write_text('[permissions]\nauto_approve = ["*"]\n')
    git_init(project)
    ten_mb = expand({"repeat": "0123456789abcde\n", "times": 10 * MB // 16})
    (project / "big.txt").write_text(ten_mb)
    (project / "a.txt").write_text("alpha\n")
    (project / "src").mkdir()
    (project / "src" / "m.py").write_text("x = 1\n")
    _sparse(project / "huge.log", 1000)
    _sparse(project / "huge.py", 1000)
    (project / "crowd").mkdir()
    for n in range(20_000):
        (project / "crowd" / f"f{n}.txt").touch()
    cases = json.loads((CORPUS / "big.json").read_text())
    most_read = 0
    async with serve(project) as session:
        (pid,) = processes(LOOMKIN, cwd=project)
        for case in cases:
            arguments = expand(case["args"])
            expected_disk = _expected_disk(project, case["tool"], arguments)
            before = proc_number(pid, "io", "rchar")
            with anyio.fail_after(120):
                result = await session.call_tool(case["tool"], arguments)
            # The request itself arrives on stdin: it does not count as reading files.
            read = proc_number(pid, "io", "rchar") - before - len(json.dumps(arguments))
            most_read = max(most_read, read)
            text = text_of(result)
            assert ("refused" if result.is_error else "handled") == case["expect"], (case["tool"], text[:300])
            if result.is_error:
                assert "Traceback" not in text and "\n" not in text.strip(), text
            assert read < MAX_READ_PER_CALL, (case["tool"], case["args"], read)
            if expected_disk is not None and not result.is_error:
                path, content = expected_disk
                assert path.read_text() == content, (case["tool"], path)
        peak = proc_number(pid, "status", "VmHWM") * 1024
    assert peak < MAX_PEAK_RSS, peak
    record(
        "hostile corpus", f"{len(cases)} calls with 10 MB and 65 MB arguments and on 1 GB files "
        "(`file_read`, `file_edit`, searches, `lsp_diagnostics`, `repo_map`, `git status`)",
        calls=len(cases), most_read_by_one_call=f"{most_read / MB:.1f} MB", peak_rss=f"{peak / MB:.0f} MB",
        hangs=0,
    )  # fmt: skip


def _expected_disk(project: Path, tool: str, arguments: dict[str, Any]) -> tuple[Path, str] | None:
    """What the file must hold after a successful write or edit, computed here, not by the server."""
    if tool == "file_write":
        return project / arguments["file_path"], arguments["content"]
    if tool == "file_edit":
        path = project / arguments["file_path"]
        if path.stat().st_size > 64 * MB:
            return None
        return path, path.read_text().replace(arguments["old_string"], arguments["new_string"], 1)
    return None


# Runs a command and writes its exit code and peak RSS. A fresh process in between, because a child's
# ru_maxrss starts from its parent's high-water mark (the test process's, after building big strings).
PEAK_OF = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss * 1024}")
"""


def _write_config(root: Path, bomb: dict[str, Any]) -> None:
    target = root / ".loomkin.toml"
    special = bomb.get("special")
    if special == "fifo":
        os.mkfifo(target)
    elif special == "directory":
        target.mkdir()
    elif special:
        target.symlink_to(special)
    else:
        encoding = "latin-1" if bomb.get("bytes") else "utf-8"
        with open(target, "w", encoding=encoding) as handle:
            for part, times in bomb["parts"]:
                for start in range(0, times, 65536):  # in slices: a 200 MB bomb never sits in memory here
                    handle.write(part * min(65536, times - start))
            if "numbered" in bomb:
                template, count = bomb["numbered"]
                handle.writelines(template.replace("{n}", str(n)) for n in range(count))


def test_configuration_bombs_end_in_one_clear_line(tmp_path: Path) -> None:
    bombs = json.loads((CORPUS / "toml.json").read_text())
    outcomes = {"refused": 0, "started": 0}
    peaks = []
    for number, bomb in enumerate(bombs):
        root = tmp_path / f"p{number}"
        root.mkdir()
        _write_config(root, bomb)
        out, err, peak = (tmp_path / f"p{number}.{kind}" for kind in ("out", "err", "peak"))
        with open(out, "wb") as stdout_file, open(err, "wb") as stderr_file:
            process = subprocess.Popen(
                [sys.executable, "-c", PEAK_OF, str(peak), LOOMKIN, "--stdio", "--root", str(root)],
                stdin=subprocess.DEVNULL, stdout=stdout_file, stderr=stderr_file, env=os.environ | server_env(),
                cwd=root,
            )  # fmt: skip
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise AssertionError(f"{bomb['name']}: loomkin-mcp did not start or stop within 60 s") from None
        returncode, peak_bytes = (int(word) for word in peak.read_text().split())
        stdout, stderr = out.read_bytes(), err.read_bytes()
        peaks.append(peak_bytes)
        name = bomb["name"]
        assert returncode in (0, 2), (name, returncode, stderr[-2000:])
        assert b"Traceback" not in stderr and stdout == b"", (name, stderr[-2000:])
        if returncode == 2:
            lines = stderr.decode().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("loomkin-mcp: "), (name, lines)
            outcomes["refused"] += 1
        else:
            outcomes["started"] += 1
        assert peak_bytes < MAX_PEAK_RSS, (name, peak_bytes)
    record(
        "hostile corpus", f"{len(bombs)} `.loomkin.toml` bombs (nesting 100,000 deep, 100,000-part keys, "
        "200 MB, 5,000 servers, digits, bad bytes, a FIFO, /dev/zero)", refused_with_one_line=outcomes["refused"],
        started_normally=outcomes["started"], tracebacks=0, hangs=0, peak_rss=f"{max(peaks) / MB:.0f} MB",
    )  # fmt: skip
