"""file_search and content_search: ripgrep when it is there, the same results in Python when not.

ripgrep comes from the `ripgrep` wheel, which puts `rg` beside the venv's python (not on PATH
unless the venv is active). `LOOMKIN_RG` names another `rg`, or turns it off when empty.
Both engines respect `.gitignore` and `.ignore` files (in and out of git repositories), skip
hidden files unless asked, skip binary files, and list results in path order. Ignore files
above the project root are not read (ripgrep would read them outside a git repository).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Literal, NamedTuple

import re2

from .._confine import Confined
from .._errors import ToolInputError, one_line
from .._fs import OwnFileRefused, open_directory_beneath, read_own_file
from ..sandbox._service import Sandbox
from ..workspace import Workspace, compile_glob
from ..workspace._ignore import MAX_DEPTH

logger = logging.getLogger("loomkin_mcp.search")

OutputMode = Literal["content", "files", "count"]

DEFAULT_MAX_RESULTS = 100
MAX_LINE_CHARS = 500
_BINARY_SNIFF_BYTES = 8192
_MAX_FILE_BYTES = 50 * 1024 * 1024
# ripgrep's output held in memory to be put in path order; past it, a sorted run streams instead.
_MAX_UNSORTED_OUTPUT = 16 * 1024 * 1024
# A line of ripgrep's output after `path NUL`: `12:text` (a match) or `12-text` (context).
_NUMBERED = re.compile(rb"(\d*)([:-]?)")


def find_rg() -> str | None:
    """ripgrep, when it is there (see the module doc)."""
    configured = os.environ.get("LOOMKIN_RG")
    if configured is not None:
        return configured or None
    beside_python = Path(sys.executable).parent / "rg"
    return str(beside_python) if beside_python.exists() else shutil.which("rg")


def _stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """Kill ripgrep and whatever its sandbox started, and close its pipes (nothing more is read from them).

    The whole process group: bubblewrap's child that runs ripgrep asks to die with bubblewrap only once it
    is set up, so one killed just after it started lives on, holding the pipes (and a FIFO it opened)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):  # (the group is gone: all ended)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def _hidden(hidden: bool) -> list[str]:
    """ripgrep's arguments to search hidden files too, `.git/` never. (Without them it enters no hidden
    directory: a glob that keeps `.git/` out would only cost a match per path, ~5 % of a search.)"""
    return ["--hidden", "--glob", "!.git"] if hidden else []


class _RipgrepUnsafeHere(Exception):
    """An ignore file under the search's base would hang or flood ripgrep (see `_unsafe_here`)."""


class Hit(NamedTuple):
    path: str
    line: int
    text: str
    is_match: bool


class SearchService:
    def __init__(self, workspace: Workspace, sandbox: Sandbox) -> None:
        self._ws = workspace
        self._sandbox = sandbox
        self._warned: set[Path] = set()

    # -- file_search ----------------------------------------------------------------------

    def find_files(
        self, pattern: str, path: str = ".", include_hidden: bool = False, include_ignored: bool = False,
        max_results: int = DEFAULT_MAX_RESULTS,
    ) -> str:  # fmt: skip
        base, prefix = self._base(path)
        if not pattern.strip():
            raise ToolInputError("pattern is empty; give a glob such as `**/*.ex` or `lib/**/*.py`.")
        rg = find_rg()
        unread: list[str] = []
        files = self._rg_files(rg, base, pattern, include_hidden, include_ignored, unread) if rg else None
        if files is None:
            files = self._walk_files(base, pattern, include_hidden, include_ignored)
        found = [prefix + name for name in files]
        note = [_unsearched_note(unread)] if unread else []
        if not found:
            return "\n".join([f"No files match `{pattern}` under {prefix or './'}.", *note])
        found.sort(key=lambda name: (-_mtime(self._ws.root / name), name))
        shown = found[:max_results]
        more = len(found) - len(shown)
        tail = [f"… {more} more (newest {len(shown)} shown); narrow the pattern or the path."] if more else []
        return "\n".join(shown + tail + note)

    def _rg_files(
        self, rg: str, base: Path, pattern: str, hidden: bool, ignored: bool, unread: list[str]
    ) -> list[str] | None:
        """The files matching `pattern` (None when ripgrep must not be used here); what ripgrep could not read
        on the way is added to `unread`."""
        argv = [rg, "--files", "--no-require-git", "--no-ignore-parent", "--glob", pattern, *_hidden(hidden)]
        argv += ["--no-ignore"] if ignored else []
        done = self._rg_run(argv, base)
        if done is None:
            return None
        if done.returncode not in (0, 1):
            problems = [line for line in done.stderr.splitlines() if line.strip()]
            # ripgrep lists what it can and exits 2 when a directory or file could not be read; a bad glob
            # stops it before it lists anything.
            if any("error parsing glob" in line for line in problems) or not problems:
                raise ToolInputError(f"`{pattern}` is not a usable glob: {_first_line(done.stderr)}.")
            unread += problems
        names = [line.removeprefix("./") for line in done.stdout.splitlines() if line]
        return names if ignored else [name for name in names if not self._ignored(base, name)]

    def _walk_files(self, base: Path, pattern: str, hidden: bool, ignored: bool) -> list[str]:
        matcher = compile_glob(pattern)
        return [name for name in self._walk(base, hidden, ignored) if matcher.fullmatch(name)]

    def files_containing(self, literal: str, base: Path, whole_word: bool) -> list[str] | None:
        """Files under `base` (not hidden, not ignored) whose text holds `literal`, relative to the root; None when
        ripgrep cannot be used here (the caller then relies on what it already knows)."""
        rg = find_rg()
        if rg is None:
            return None
        argv = [rg, "--files-with-matches", "--fixed-strings", "--no-require-git", "--no-ignore-parent"]
        argv += ["--word-regexp"] if whole_word else []
        argv += ["--", literal, "."]
        done = self._rg_run(argv, base)
        if done is None or done.returncode not in (0, 1):
            return None
        prefix = self._ws.relative(base)
        prefix = "" if prefix == "." else prefix + "/"
        names = [prefix + line.removeprefix("./") for line in done.stdout.splitlines() if line]
        return [name for name in names if not self._ignored(self._ws.root, name)]

    def list_source_files(self) -> list[str]:
        """Every file of the project that is neither hidden nor ignored, relative to the root."""
        rg = find_rg()
        argv = [rg, "--files", "--no-require-git", "--no-ignore-parent"]
        done = self._rg_run(argv, self._ws.root) if rg else None  # type: ignore[list-item]
        if done is None:
            return self._walk(self._ws.root, False, False)
        # ripgrep lists in parallel, in no fixed order.
        return sorted(line.removeprefix("./") for line in done.stdout.splitlines() if line)

    # -- content_search -------------------------------------------------------------------

    def search(
        self, pattern: str, path: str = ".", glob: str | None = None, case_insensitive: bool = False,
        context_lines: int = 0, output_mode: OutputMode = "content", max_results: int = DEFAULT_MAX_RESULTS,
        include_hidden: bool = False,
    ) -> str:  # fmt: skip
        if not pattern:
            raise ToolInputError("pattern is empty; give a regular expression such as `def \\w+`.")
        if not 0 <= context_lines <= 20:
            raise ToolInputError(f"context_lines is {context_lines}; give 0 to 20.")
        if max_results < 1:
            raise ToolInputError("max_results must be 1 or more.")
        base, prefix = self._base(path)
        unsearched: list[str] = []
        hits = self._hits(base, pattern, glob, case_insensitive, context_lines, output_mode, include_hidden, unsearched)
        text = _render(hits, prefix, output_mode, max_results, pattern)
        return text + ("\n" + _unsearched_note(unsearched) if unsearched else "")

    def matching_lines(self, pattern: str, max_results: int) -> list[Hit]:
        """The project's lines matching `pattern` (paths relative to the root, in path order), at most
        `max_results`: for tools that look further at each hit."""
        unsearched: list[str] = []
        hits = self._hits(self._ws.root, pattern, None, False, 0, "content", False, unsearched)
        with closing(hits):  # (closing it stops ripgrep at the cap)
            return list(islice(hits, max_results))

    def _hits(
        self, base: Path, pattern: str, glob: str | None, case_insensitive: bool, context: int,
        output_mode: OutputMode, hidden: bool, unsearched: list[str],
    ) -> Iterator[Hit]:  # fmt: skip
        rg = find_rg()
        if rg:
            try:
                yield from self._rg_search(
                    rg, base, pattern, glob, case_insensitive, context, output_mode, hidden, unsearched
                )
                return
            except _RipgrepUnsafeHere:  # (raised before any hit)
                pass
        yield from self._py_search(base, pattern, glob, case_insensitive, context, hidden, unsearched)

    def _rg_search(
        self, rg: str, base: Path, pattern: str, glob: str | None, case_insensitive: bool, context: int,
        output_mode: OutputMode, hidden: bool, unsearched: list[str],
    ) -> Iterator[Hit]:  # fmt: skip
        """ripgrep's hits in path order; what it could not search (unreadable or too deep directories) goes to
        `unsearched`. ripgrep searches on every core, unordered, and the hits are ordered here; a search whose
        output passes `_MAX_UNSORTED_OUTPUT` runs again sorted (one core), streaming up to the caller's cap."""
        # Plain output with NUL after the path parses several times faster than --json.
        argv = [rg, "--null", "--line-number", "--no-heading", "--with-filename", "--color=never"]
        argv += ["--no-require-git", "--no-ignore-parent", "--max-filesize", str(_MAX_FILE_BYTES)]
        argv += ["--regexp", pattern, *_hidden(hidden)]
        argv += ["--ignore-case"] if case_insensitive else ["--case-sensitive"]
        argv += [f"--context={context}"] if context and output_mode == "content" else []
        argv += ["--glob", glob] if glob else []
        with self._rg_process(argv, base, pattern, unsearched) as process:
            assert process.stdout is not None
            output = process.stdout.read(_MAX_UNSORTED_OUTPUT + 1)
        if len(output) <= _MAX_UNSORTED_OUTPUT:
            files: dict[bytes, list[bytes]] = {}
            for raw in output.splitlines(keepends=True):
                path_bytes, separator, rest = raw.partition(b"\0")
                if separator:  # (not a "--" between context groups)
                    files.setdefault(path_bytes, []).append(rest)
            for path_bytes in sorted(files, key=lambda name: name.split(b"/")):
                yield from self._hits_in(base, glob, path_bytes, files[path_bytes])
            return
        del output
        with self._rg_process([*argv, "--sort", "path"], base, pattern, unsearched) as process:
            assert process.stdout is not None
            for raw in process.stdout:
                path_bytes, separator, rest = raw.partition(b"\0")
                if separator:
                    yield from self._hits_in(base, glob, path_bytes, [rest])

    def _hits_in(self, base: Path, glob: str | None, path_bytes: bytes, lines: list[bytes]) -> Iterator[Hit]:
        """One file's lines of ripgrep's output (`12:text` after `path NUL`); none for a path the ignore rules
        keep out."""
        path = path_bytes.decode("utf-8", errors="replace").removeprefix("./")
        if glob and self._ignored(base, path):
            return
        for rest in lines:
            numbered = _NUMBERED.match(rest)
            assert numbered is not None  # (it matches any line: digits and separator may be empty)
            text = rest[numbered.end() :].decode("utf-8", errors="replace")
            yield Hit(path, int(numbered[1] or 0), text, numbered[2] == b":")

    @contextmanager
    def _rg_process(
        self, argv: list[str], base: Path, pattern: str, unsearched: list[str]
    ) -> Iterator[subprocess.Popen[bytes]]:
        """ripgrep running in `base`; on a normal exit its problems are checked, and it is never left running."""
        process = self._rg_checked(argv, base)
        if process is None:
            raise _RipgrepUnsafeHere
        assert process.stdout is not None and process.stderr is not None
        # Read beside stdout: a tree of thousands of unreadable directories must not fill the pipe and stall rg.
        errors = _StderrLines()
        reader = threading.Thread(target=errors.read, args=(process.stderr,), daemon=True)
        reader.start()
        try:
            yield process
            if process.stdout.read(1):
                return  # more than was read: stopped early (the finally kills it)
            process.wait()
            reader.join()
            stderr = "\n".join(errors.kept)
            if process.returncode == 2 and "regex" in stderr and "error" in stderr:
                raise ToolInputError(_regex_problem(pattern, stderr))
            problems = [line for line in errors.kept if line.startswith("rg: ")]
            if problems:
                unsearched.extend(problems + [""] * (errors.count - len(errors.kept)))
        finally:
            # Stopped early at the cap: rg is killed rather than left to finish.
            _stop(process)

    def _py_search(
        self, base: Path, pattern: str, glob: str | None, case_insensitive: bool, context: int, hidden: bool,
        unsearched: list[str],
    ) -> Iterator[Hit]:  # fmt: skip
        try:
            # RE2, as ripgrep's own engine: linear in the text searched, whatever the pattern.
            regex = re2.compile(("(?i)" if case_insensitive else "") + pattern)
        except re2.error as exc:
            raise ToolInputError(f"`{pattern}` is not a valid regular expression: {exc}.") from None
        matcher = compile_glob(glob) if glob else None
        for name in self._walk(base, hidden, False, unsearched):
            if matcher is not None and not matcher.fullmatch(name):
                continue
            lines = _text_lines(base / name, self._ws.root)
            if lines is None:
                continue
            matches = [i for i, line in enumerate(lines) if regex.search(line)]
            shown: set[int] = set()
            for index in matches:
                for near in range(max(index - context, 0), min(index + context + 1, len(lines))):
                    shown.add(near)
            for index in sorted(shown):
                yield Hit(name, index + 1, lines[index] + "\n", index in matches)

    # -- shared ---------------------------------------------------------------------------

    def _rg_run(self, argv: list[str], base: Path) -> subprocess.CompletedProcess[str] | None:
        """ripgrep run to its end in `base` (see `_rg_checked`), its output as text; None when ripgrep must not
        be used there."""
        process = self._rg_checked(argv, base, text=True)
        if process is None:
            return None
        try:
            stdout, stderr = process.communicate()
        except BaseException:  # interrupted: never left running (as `subprocess.run` had it)
            _stop(process)
            raise
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    def _rg_checked(self, argv: list[str], base: Path, text: bool = False) -> subprocess.Popen | None:  # type: ignore[type-arg]
        """ripgrep started in `base` (see `_started`), its output piped; None when an ignore file under `base`
        is unsafe for it (`_unsafe_here`). Under a directory checked before, the check (a stat per directory,
        ~30 ms on 3,000) runs while ripgrep does, which is stopped, what it wrote unread, if the check fails: a
        bad file put there since can hold it only those milliseconds. The first check of a directory reads
        every directory below it, so it runs before."""
        walked = self._ws.ignore.walked(base)
        if not walked and self._unsafe_here(base):
            return None
        with self._started(argv, base) as (confined, cwd, fds):
            process = subprocess.Popen(
                confined.argv, cwd=cwd, env=confined.env, pass_fds=fds, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=text, start_new_session=True,
            )  # fmt: skip
        usable = not walked
        try:
            usable = usable or not self._unsafe_here(base)
        finally:
            if not usable:
                _stop(process)
        return process if usable else None

    @contextmanager
    def _started(self, argv: list[str], base: Path) -> Iterator[tuple[Confined, str, tuple[int, ...]]]:
        """ripgrep as it starts in `base`: inside the sandbox, with the directory the guard checked bound where
        it is (so no name is resolved again); what to spawn, its working directory and the descriptors to pass."""
        with self._held(base) as (cwd, fds):
            confined = self._sandbox.helper(argv, cwd if fds else None, base)
            try:
                yield confined, cwd, fds + confined.pass_fds
            finally:
                confined.close()

    @contextmanager
    def _held(self, base: Path) -> Iterator[tuple[str, tuple[int, ...]]]:
        """Where ripgrep starts: `base` as the directory the guard checked, reached by descriptor (a directory
        swapped for a link in between fails here), given to the child as `/proc/self/fd/N` on Linux."""
        if not sys.platform.startswith("linux"):
            yield str(base), ()
            return
        try:
            fd = open_directory_beneath(self._ws.root_fd, base.relative_to(self._ws.root).parts)
        except OSError:
            raise ToolInputError(
                f"'{self._ws.relative(base)}' changed while it was being searched (a directory on its way is no "
                "longer one); check the path and try again."
            ) from None
        try:
            yield f"/proc/self/fd/{fd}", (fd,)
        finally:
            os.close(fd)

    def _unsafe_here(self, base: Path) -> bool:
        """Whether an ignore file under `base` would hang or flood ripgrep (it opens them all, following links
        and blocking on FIFOs): then Python searches instead."""
        unsafe = self._ws.ignore.unsafe_ignore_file(base)
        if unsafe is None:
            return False
        if unsafe not in self._warned:
            self._warned.add(unsafe)
            logger.warning(
                "%s is not a regular file of at most 1 MB inside the project, so it is not read and searches "
                "run without ripgrep here; replace it with a regular file.", unsafe,
            )  # fmt: skip
        return True

    def _base(self, path: str) -> tuple[Path, str]:
        base = self._ws.resolve(path, what="path")
        relative = self._ws.relative(base)
        if not base.is_dir():
            raise ToolInputError(f"'{relative}' is not a directory; give the directory to search in.")
        return base, "" if relative == "." else relative + "/"

    def _ignored(self, base: Path, name: str) -> bool:
        """Whether `name` (relative to `base`) is ignored: ripgrep's globs would let it through."""
        offset = self._ws.relative(base)
        return self._ws.ignore.is_ignored(name if offset == "." else f"{offset}/{name}", False)

    def _walk(self, base: Path, hidden: bool, ignored: bool, too_deep: list[str] | None = None) -> list[str]:
        """Files under `base` (relative to it), as ripgrep would list them, in path order; directories below
        `MAX_DEPTH` levels are not entered (named in `too_deep`)."""
        found: list[str] = []
        offset = self._ws.relative(base)
        prefix = "" if offset == "." else offset + "/"
        for directory, dirnames, filenames in os.walk(base):
            here = Path(directory).relative_to(base).as_posix()
            if here.count("/") >= MAX_DEPTH:
                if dirnames and too_deep is not None:
                    too_deep.append(f"{here}/{dirnames[0]}: deeper than {MAX_DEPTH} levels")
                dirnames[:] = []
            here = "" if here == "." else here + "/"
            keep = []
            for name in sorted(dirnames):
                if name == ".git" or (not hidden and name.startswith(".")):
                    continue
                if not ignored and self._ws.ignore.is_ignored(prefix + here + name, True):
                    continue
                keep.append(name)
            dirnames[:] = keep
            for name in filenames:
                if not hidden and name.startswith("."):
                    continue
                if not ignored and self._ws.ignore.is_ignored(prefix + here + name, False):
                    continue
                found.append(here + name)
        found.sort(key=lambda name: name.split("/"))
        return found


def _render(hits: Iterator[Hit], prefix: str, mode: OutputMode, max_results: int, pattern: str) -> str:
    lines: list[str] = []
    counts: dict[str, int] = {}
    matches = 0
    capped = False
    for hit in hits:
        if mode == "content":
            if hit.is_match and matches >= max_results:
                capped = True
                break
            text = hit.text.rstrip("\n").rstrip("\r")
            if len(text) > MAX_LINE_CHARS:
                text = text[:MAX_LINE_CHARS] + " … [line cut]"
            lines.append(
                f"{prefix}{hit.path}{':' if hit.is_match else '-'}{hit.line}{':' if hit.is_match else '-'}{text}"
            )
        elif hit.is_match:
            if hit.path not in counts and len(counts) >= max_results:
                capped = True
                break
            counts[hit.path] = counts.get(hit.path, 0) + 1
        matches += hit.is_match
    if mode == "files":
        lines = [prefix + path for path in counts]
    elif mode == "count":
        lines = [f"{prefix}{path}:{count}" for path, count in counts.items()]
    if not lines:
        return f"No matches for `{pattern}`."
    if capped:
        unit = "matches" if mode == "content" else "files"
        lines.append(f"[stopped at {max_results} {unit}; narrow the pattern, path or glob, or raise max_results]")
    return "\n".join(lines)


def _text_lines(path: Path, root: Path) -> list[str] | None:
    """A file's lines as text, or None for binary and huge files (what ripgrep skips), and for FIFOs,
    devices and links leading out of the project (ripgrep neither follows nor blocks on them)."""
    try:
        found = read_own_file(path, root, _MAX_FILE_BYTES)
    except OwnFileRefused:
        return None
    if found is None or found.truncated:
        return None
    data = found.data
    if b"\x00" in data[:_BINARY_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace").split("\n")[: -1 if data.endswith(b"\n") else None]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _unsearched_note(unsearched: list[str]) -> str:
    """One line for the paths ripgrep could not read (the first as it wrote it, then blanks for the rest it
    counted)."""
    first = one_line(unsearched[0].removeprefix("rg: "))[:200]
    return f"[{len(unsearched)} path(s) could not be searched (first: {first}); the results above come from the rest]"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "ripgrep failed")


class _StderrLines:
    """ripgrep's stderr, read to its end: the first lines kept, the rest only counted."""

    def __init__(self, limit: int = 100) -> None:
        self.kept: list[str] = []
        self.count = 0
        self._limit = limit

    def read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.count += 1
            if len(self.kept) < self._limit:
                self.kept.append(raw.decode("utf-8", "replace").rstrip("\n"))


def _regex_problem(pattern: str, stderr: str) -> str:
    detail = [line.strip() for line in stderr.splitlines() if line.strip().startswith("error:")]
    reason = detail[0].removeprefix("error:").strip() if detail else _first_line(stderr)
    return f"`{pattern}` is not a valid regular expression: {reason}."
