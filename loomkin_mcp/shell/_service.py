"""Run one command, as argv without a shell, when a LOOMKIN.md `Shell:` pattern allows it.

What a shell would interpret (`;`, `&&`, `|`, `$(…)`, backticks, redirections, globs,
variables) is refused with a message, never passed on as a literal argument: the model
must not believe a pipeline ran when it did not. Text inside single quotes, and inside
double quotes except `$` and backticks, is literal, exactly as a shell would take it.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio
from anyio.abc import Process

from loomkin_lsp_client import program_missing

from .._confine import Confined
from .._errors import PermissionRefused, ToolInputError
from .._fs import proc_stat
from ..git._service import refuse_git_program_options
from ..sandbox._service import Sandbox
from ..workspace import PROTECTED_FILES, Workspace

DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 600_000
OUTPUT_HEAD_CHARS = 3_000
OUTPUT_TAIL_CHARS = 7_000
_KILL_GRACE_SECONDS = 2.0

_UNQUOTED = {
    ";": "`;` chains commands",
    "&": "`&` and `&&` chain or background commands",
    "|": "`|` and `||` pipe or chain commands",
    ">": "`>` redirects output",
    "<": "`<` redirects input",
    "`": "backticks run a command",
    "$": "`$` expands variables and `$(…)` runs a command",
    "\n": "a newline starts a second command",
    "\r": "a carriage return hides a second command",
    "*": "`*` is a glob the shell would expand",
    "?": "`?` is a glob the shell would expand",
    "(": "`(` starts a subshell",
    ")": "`)` ends a subshell",
    "{": "`{` starts brace expansion or a group",
    "}": "`}` ends brace expansion or a group",
}
logger = logging.getLogger("loomkin_mcp.shell")

_IN_DOUBLE_QUOTES = {"`": "backticks run a command", "$": "`$` expands variables and `$(…)` runs a command"}


@dataclass(frozen=True)
class ShellResult:
    argv: list[str]
    exit_code: int | None
    output: str
    timed_out: bool
    duration_ms: int
    notes: tuple[str, ...] = ()
    """What loomkin adds: the sandbox had no network for it, a protected file it created was removed."""


def parse_command(command: str) -> list[str]:
    """Split `command` into argv, refusing anything only a shell could run."""
    if not command.strip():
        raise ToolInputError("command is empty; give one command line, e.g. `mix test`.")
    if "\x00" in command:
        raise ToolInputError("command contains a NUL byte; remove it.")
    quote = ""
    escaped = False
    for char in command:
        if escaped:
            escaped = False
            continue
        if quote == "'":
            quote = "" if char == "'" else quote
            continue
        if char == "\\":
            escaped = True
            continue
        if quote == '"':
            if char == '"':
                quote = ""
            elif char in _IN_DOUBLE_QUOTES:
                raise _metachar_refusal(_IN_DOUBLE_QUOTES[char])
            continue
        if char in "'\"":
            quote = char
        elif char in _UNQUOTED:
            raise _metachar_refusal(_UNQUOTED[char])
    if quote:
        raise ToolInputError(f"command has an unclosed {quote} quote; close it and try again.")
    argv = shlex.split(command)
    if argv[0].startswith("~"):
        raise ToolInputError("`~` is not expanded because no shell runs; give the program's name or real path.")
    if "=" in argv[0] and not argv[0].startswith(("/", ".")):
        raise ToolInputError(
            f"`{argv[0]}` looks like an environment assignment, which needs a shell; run the command without it."
        )
    return argv


def _metachar_refusal(reason: str) -> ToolInputError:
    return ToolInputError(
        f"command refused: {reason}, and loomkin runs one program without a shell; "
        "run each command in its own shell call and quote literal arguments."
    )


def matching_pattern(argv: list[str], patterns: tuple[str, ...]) -> str | None:
    """The first of `patterns` (`Shell:` globs such as `mix *`) that allows `argv`, as written."""
    for pattern in patterns:
        words = _pattern_words(pattern)
        if words and _words_match(words, argv):
            return pattern
    return None


def denying_pattern(argv: list[str], patterns: tuple[str, ...]) -> str | None:
    """The first of `patterns` (`Denied Operations` `Shell:` globs) that `argv` could mean.

    Read as the program reads it, so a denial cannot be dodged by spelling: git's global options
    (`-P`, `--no-pager`, `-C DIR`…) are taken out; an option in the pattern may stand anywhere after
    the words before it; a long option is matched by any prefix of it (git takes `--har` for
    `--hard`); a short one inside a cluster (`-df` holds `-f`).
    """
    argv = canonical_argv(argv)
    for pattern in patterns:
        words = _pattern_words(pattern)
        if words and _could_mean(words, argv):
            return pattern
    return None


def canonical_argv(argv: list[str]) -> list[str]:
    """`argv` without the options a program takes before its subcommand (git's), for matching."""
    if os.path.basename(argv[0]) != "git":
        return argv
    index = 1
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "--":
        takes_value = argv[index] in _GIT_GLOBAL_OPTIONS_WITH_VALUE
        index += 2 if takes_value else 1
    return [argv[0], *argv[index:]]


# git's global options that take their value as the next word (`git -C dir …`); `--opt=value` is one word.
_GIT_GLOBAL_OPTIONS_WITH_VALUE = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--super-prefix", "--list-cmds"}
)


def _pattern_words(pattern: str) -> list[str]:
    try:
        return shlex.split(pattern)
    except ValueError:
        return []


def _could_mean(words: list[str], argv: list[str]) -> bool:
    positional = [word for word in words if not word.startswith("-")]
    options = [word for word in words if word.startswith("-")]
    given = [word for word in argv if not word.startswith("-")]
    if not positional or len(given) < len(positional) - (positional[-1] == "*"):
        return False
    *fixed, last = positional
    if not all(fnmatch.fnmatchcase(a, w) for w, a in zip(fixed, given, strict=False)):
        return False
    rest = given[len(fixed) :]
    last_matches = (fnmatch.fnmatchcase(" ".join(rest), last) if last.endswith("*")
                    else bool(rest) and fnmatch.fnmatchcase(rest[0], last))  # fmt: skip
    if not last_matches and not (options and last.endswith("*") and fnmatch.fnmatchcase("", last)):
        return False
    flags = [word for word in argv if word.startswith("-")]
    return all(any(_option_could_mean(flag, option) for flag in flags) for option in options)


def _option_could_mean(flag: str, option: str) -> bool:
    """Whether `flag` as given could be `option` (a pattern word such as `--hard*` or `-f`)."""
    if fnmatch.fnmatchcase(flag, option):
        return True
    literal = option.rstrip("*")
    if literal.startswith("--") and flag.startswith("--"):
        name = flag.split("=", 1)[0]
        return len(name) > 2 and literal.startswith(name)
    if len(literal) == 2 and literal[0] == "-" and flag.startswith("-") and not flag.startswith("--"):
        return literal[1] in flag[1:]
    return False


def _words_match(words: list[str], argv: list[str]) -> bool:
    """Word by word; a last word ending in `*` matches the rest of the line (`mix *`, `git log*`)."""
    *fixed, last = words
    if len(argv) < len(fixed) or not all(fnmatch.fnmatchcase(a, w) for w, a in zip(fixed, argv, strict=False)):
        return False
    rest = argv[len(fixed) :]
    if last.endswith("*"):
        return fnmatch.fnmatchcase(" ".join(rest), last)
    return len(rest) == 1 and fnmatch.fnmatchcase(rest[0], last)


class ShellService:
    def __init__(self, workspace: Workspace, sandbox: Sandbox) -> None:
        self._ws = workspace
        self._sandbox = sandbox
        self._running: set[int] = set()
        """Process groups of commands still running: whatever ends the server ends them too."""

    def stop_all(self) -> None:
        """Kill every command still running (the server is stopping, however its calls were ended)."""
        for pid in list(self._running):
            for pgid in _process_groups(pid):
                _signal_group(pgid, signal.SIGKILL)

    def authorize(self, command: str) -> list[str]:
        """argv for `command` when LOOMKIN.md allows it; refuses with the reason otherwise."""
        argv = parse_command(command)
        rules = self._ws.rules
        name = rules.path.name if rules.path else "LOOMKIN.md"
        denied = denying_pattern(argv, rules.shell_denied)
        if denied is not None:
            raise PermissionRefused(f"`{command}` matches the denied shell pattern `{denied}` in {name}.")
        if rules.unreadable:
            raise PermissionRefused(
                f"shell commands are off because {name} {rules.unreadable}; replace it with a regular file in the "
                "project."
            )
        if not rules.shell_allowed:
            raise PermissionRefused(
                f"shell commands are off because {name} has no `Shell:` rule; ask the person to add one under "
                "`## Allowed Operations`, e.g. `- Shell: `mix *`, `git *``."
            )
        if not self._ws.trust.trusted:
            raise PermissionRefused(
                f"shell commands are held back because the person has not trusted this project's {name} rules yet; "
                f"they can review and allow them with `loomkin-mcp trust --root {self._ws.root}`."
            )
        if matching_pattern(canonical_argv(argv), rules.shell_allowed) is None:
            allowed = ", ".join(f"`{p}`" for p in rules.shell_allowed)
            raise PermissionRefused(
                f"`{command}` matches no `Shell:` pattern in {name} ({allowed}); use an allowed command "
                "or ask the person to extend the rule."
            )
        if os.path.basename(argv[0]) == "git":
            refuse_git_program_options(argv[1:], self._ws.root)
        return argv

    async def run(self, argv: list[str], timeout_ms: int = DEFAULT_TIMEOUT_MS) -> ShellResult:
        if not 1 <= timeout_ms <= MAX_TIMEOUT_MS:
            raise ToolInputError(f"timeout is {timeout_ms} ms; give 1 to {MAX_TIMEOUT_MS} ms.")
        self._require_program(argv[0])
        # The command's TMPDIR: under loomkin's own `.loomkin/` (so nothing is written outside the project),
        # writable inside the sandbox although `.loomkin/` is not, and removed after the call.
        with tempfile.TemporaryDirectory(prefix="shell-", dir=self._ws.state_directory("tmp")) as scratch:
            return await self._run_confined(argv, self._sandbox.command(argv, Path(scratch)), timeout_ms)

    async def _run_confined(self, argv: list[str], confined: Confined, timeout_ms: int) -> ShellResult:
        absent, links = self._absent_protected(), self._protected_links()
        output = _HeadTail(OUTPUT_HEAD_CHARS, OUTPUT_TAIL_CHARS)
        started = anyio.current_time()
        try:
            process = await anyio.open_process(
                confined.argv,
                stdin=subprocess.DEVNULL,  # never our own stdin: in stdio mode it carries the protocol
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # one stream, in the order the command wrote it
                cwd=self._ws.root,
                env=confined.env,
                pass_fds=confined.pass_fds,
                start_new_session=True,
            )
        except OSError as exc:
            if program_missing(argv[0], exc):
                raise ToolInputError(f"`{argv[0]}` was not found; check that it is installed and on PATH.") from None
            if isinstance(exc, PermissionError):
                raise ToolInputError(f"`{argv[0]}` is not executable; check its permissions.") from None
            raise
        finally:
            confined.close()
        timed_out = False
        self._running.add(process.pid)
        try:
            with anyio.move_on_after(timeout_ms / 1000) as scope:
                assert process.stdout is not None
                async for chunk in process.stdout:
                    output.feed(chunk)
                await process.wait()
            timed_out = scope.cancelled_caught
        finally:
            with anyio.CancelScope(shield=True):
                await _end_process_group(process)
            self._running.discard(process.pid)
        logger.info("ran %s: %s", shlex.join(argv), "timed out" if timed_out else f"exit {process.returncode}")
        text = output.text()
        notes = [note for note in (self._sandbox.hint_for(text),) if note]
        notes += self._remove_created(absent)
        notes += self._restore_links(links)
        return ShellResult(
            argv=argv,
            exit_code=None if timed_out else process.returncode,
            output=text,
            timed_out=timed_out,
            duration_ms=int((anyio.current_time() - started) * 1000),
            notes=tuple(notes),
        )

    def _require_program(self, program: str) -> None:
        """A missing program is named here: inside the sandbox it would be bubblewrap's error instead."""
        where = self._ws.root / program if "/" in program and not os.path.isabs(program) else Path(program)
        found = os.access(where, os.X_OK) if "/" in program else shutil.which(program) is not None
        if not found:
            raise ToolInputError(f"`{program}` was not found; check that it is installed and on PATH.")

    def _absent_protected(self) -> list[Path]:
        """loomkin's own files not there yet: the sandbox cannot bind what does not exist, so a command could
        create one (a LOOMKIN.md that outranks `.loomkin.md`); it is removed after the call."""
        return [self._ws.root / name for name in PROTECTED_FILES if not os.path.lexists(self._ws.root / name)]

    def _protected_links(self) -> dict[Path, str]:
        """loomkin's files that are links: the sandbox binds where they lead, but the link itself lives in the
        writable root, so a command could swap it; it is put back after the call."""
        links = {}
        for name in PROTECTED_FILES:
            path = self._ws.root / name
            if os.path.islink(path):
                links[path] = os.readlink(path)
        return links

    def _restore_links(self, links: dict[Path, str]) -> list[str]:
        notes = []
        for path, target in links.items():
            if os.path.islink(path) and os.readlink(path) == target:
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            os.symlink(target, path)
            notes.append(f"the command replaced {path.name}, which holds loomkin's settings, so it was put back.")
        return notes

    def _remove_created(self, absent: list[Path]) -> list[str]:
        notes = []
        for path in absent:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            else:
                continue
            notes.append(f"the command created {path.name}, which holds loomkin's settings, so it was removed.")
        return notes


async def _end_process_group(process: Process) -> None:
    """Stop the command and everything it started: its process group and, since the sandbox starts the
    command in a session of its own (`--new-session`), the groups of its descendants too."""
    groups = _process_groups(process.pid)
    if process.returncode is None:
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        with anyio.move_on_after(_KILL_GRACE_SECONDS):
            await process.wait()
    # Children may outlive a finished leader: sweep every group either way.
    for pgid in groups | _process_groups(process.pid):
        _signal_group(pgid, signal.SIGKILL)
    if process.returncode is None:
        await process.wait()
    await process.aclose()


def _process_groups(pid: int) -> set[int]:
    """The process group of `pid` and of every descendant still alive (read from /proc where there is one)."""
    parents: dict[int, int] = {}
    groups: dict[int, int] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None:
            parents[int(entry.name)], groups[int(entry.name)] = int(fields[1]), int(fields[2])
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, queue = {pid}, [pid]
    for current in queue:
        for child in children.get(current, []):
            if child not in found:
                found.add(child)
                queue.append(child)
    return {pid} | {groups[member] for member in found if member in groups}


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class _HeadTail:
    """Keeps the first and last bytes of a stream of any size; counts what it drops."""

    def __init__(self, head: int, tail: int) -> None:
        self._head_limit, self._tail_limit = head, tail
        self._head = bytearray()
        self._tail = bytearray()
        self._total = 0

    def feed(self, chunk: bytes) -> None:
        self._total += len(chunk)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self._tail += chunk
            if len(self._tail) > 2 * self._tail_limit:
                del self._tail[: -self._tail_limit]

    def text(self) -> str:
        head = self._head.decode("utf-8", errors="replace")
        tail = bytes(self._tail[-self._tail_limit :])
        dropped = self._total - len(self._head) - len(tail)
        if dropped <= 0:
            return head + tail.decode("utf-8", errors="replace")
        return (
            head
            + f"\n… [{dropped} bytes of output omitted; showing the first {self._head_limit} and last "
            + f"{self._tail_limit}] …\n"
            + tail.decode("utf-8", errors="replace")
        )
