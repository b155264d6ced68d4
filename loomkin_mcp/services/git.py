"""Loomkin's git operations, built as argv by us so that no value can become an option."""

from __future__ import annotations

import logging
import os
import re
import subprocess
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .._errors import PermissionRefused, ToolInputError
from ..workspace import Workspace

GitOperation = Literal["status", "diff", "log", "show", "add", "commit", "reset", "stash"]
READ_ONLY_OPERATIONS = frozenset({"status", "diff", "log", "show"})
READ_ONLY_STASH_ACTIONS = frozenset({"list", "show"})

GIT_TIMEOUT_SECONDS = 60
MAX_OUTPUT_CHARS = 30_000

# Options that make git read another repository or change its configuration (before the subcommand).
_GLOBAL_OPTIONS = ("-c", "-C", "--config-env", "--git-dir", "--work-tree", "--namespace", "--exec-path")
# Options that make a subcommand run another program or write outside the project.
_SUBCOMMAND_OPTIONS = (
    "--upload-pack",
    "--receive-pack",
    "--exec",
    "--extcmd",
    "--output",
    "--open-files-in-pager",
    "--template",
    "--ext-diff",
    "--textconv",
    "--tool",
)
_SHORT_PROGRAM_OPTIONS = {"-O": "*", "-x": "rebase", "-u": "clone ls-remote", "-t": "difftool mergetool"}
_PROGRAM_SUBCOMMANDS = ("filter-branch", "difftool", "mergetool", "submodule foreach", "bisect run")
_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@{}^~:+-]*")

# Which fields of GitArgs each operation reads; anything else given is refused, not ignored.
_FIELDS: dict[str, frozenset[str]] = {
    "status": frozenset({"paths"}),
    "diff": frozenset({"paths", "ref", "staged", "stat"}),
    "log": frozenset({"paths", "ref", "limit", "stat"}),
    "show": frozenset({"paths", "ref", "stat"}),
    "add": frozenset({"paths", "all"}),
    "commit": frozenset({"message", "all"}),
    "reset": frozenset({"paths", "ref", "mode"}),
    "stash": frozenset({"action", "message", "index"}),
}


logger = logging.getLogger("loomkin_mcp.git")


class GitArgs(BaseModel):
    """Arguments of a git operation; each operation uses only the fields it names."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(
        default_factory=list, description="Project-relative paths (status, diff, log, show, add, reset)."
    )
    ref: str | None = Field(None, description="Commit, branch, tag or range such as `HEAD~3` or `main..feature`.")
    staged: bool = Field(False, description="diff: compare the index instead of the work tree.")
    stat: bool = Field(False, description="diff, log, show: summary of changed files only.")
    limit: int = Field(20, ge=1, le=500, description="log: number of commits.")
    message: str | None = Field(None, description="commit (required) and stash push: the message.")
    all: bool = Field(False, description="add: every change (-A); commit: every tracked change (-a).")
    mode: Literal["soft", "mixed", "hard"] = Field("mixed", description="reset: how far to reset.")
    action: Literal["push", "pop", "apply", "drop", "list", "show"] = Field("push", description="stash: what to do.")
    index: int | None = Field(None, ge=0, description="stash pop/apply/drop/show: which stash entry (stash@{index}).")


def is_read_only(operation: str, args: GitArgs | None) -> bool:
    if operation in READ_ONLY_OPERATIONS:
        return True
    return operation == "stash" and args is not None and args.action in READ_ONLY_STASH_ACTIONS


def refuse_git_program_options(words: list[str]) -> None:
    """Refuse git arguments (after `git`) that could run a program or reach outside the project.

    Long options are checked as git reads them, abbreviations included (`--upload-p=…`).
    """
    position = next((i for i, word in enumerate(words) if not word.startswith("-")), len(words))
    subcommand = " ".join(words[position : position + 2])
    for program in _PROGRAM_SUBCOMMANDS:
        if program in (subcommand, " ".join(words[position : position + 1])):
            raise PermissionRefused(f"`git {program}` runs other programs, so it is refused.")
    for index, word in enumerate(words):
        if word == "--":
            return
        dangerous = _GLOBAL_OPTIONS + _SUBCOMMAND_OPTIONS if index < position else _SUBCOMMAND_OPTIONS
        option = word.split("=", 1)[0]
        if option.startswith("--") and len(option) > 3:
            hit = next((d for d in dangerous if d.startswith("--") and d.startswith(option)), None)
        else:
            hit = next((d for d in dangerous if len(d) == 2 and option.startswith(d)), None)
            short = _SHORT_PROGRAM_OPTIONS.get(option[:2]) if index > position else None
            if short == "*" or (short and words[position] in short.split()):
                hit = option[:2]
        if hit is not None:
            raise PermissionRefused(
                f"git option `{hit}` can run other programs or reach outside the project, so it is refused."
            )


class GitService:
    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace

    def run(self, operation: str, args: GitArgs | None) -> str:
        args = args or GitArgs()
        given = args.model_fields_set - _FIELDS[operation]
        if given:
            wanted = ", ".join(sorted(_FIELDS[operation])) or "nothing"
            raise ToolInputError(f"git {operation} does not take {', '.join(sorted(given))}; it takes {wanted}.")
        argv = getattr(self, f"_{operation}")(args)
        output = self._execute(operation, argv)
        if not is_read_only(operation, args):
            logger.info("git %s done", operation)
        return output

    # -- argv per operation ---------------------------------------------------------------

    def _status(self, args: GitArgs) -> list[str]:
        return ["status", "--short", "--branch", "--", *self._paths(args)]

    def _diff(self, args: GitArgs) -> list[str]:
        argv = ["diff", "--no-ext-diff", "--no-textconv"]
        argv += ["--cached"] if args.staged else []
        argv += ["--stat"] if args.stat else []
        argv += [self._ref(args.ref)] if args.ref is not None else []
        return [*argv, "--", *self._paths(args)]

    def _log(self, args: GitArgs) -> list[str]:
        argv = ["log", f"--max-count={args.limit}", "--no-ext-diff", "--no-textconv"]
        argv += ["--stat"] if args.stat else ["--format=%h %ad %an: %s", "--date=short"]
        argv += [self._ref(args.ref)] if args.ref is not None else []
        return [*argv, "--", *self._paths(args)]

    def _show(self, args: GitArgs) -> list[str]:
        argv = ["show", "--no-ext-diff", "--no-textconv"]
        argv += ["--stat"] if args.stat else []
        return [*argv, self._ref("HEAD" if args.ref is None else args.ref), "--", *self._paths(args)]

    def _add(self, args: GitArgs) -> list[str]:
        if args.all:
            if args.paths:
                raise ToolInputError("git add takes either paths or all=true, not both.")
            return ["add", "--all"]
        if not args.paths:
            raise ToolInputError("git add needs paths, or all=true to stage every change.")
        return ["add", "--", *self._paths(args)]

    def _commit(self, args: GitArgs) -> list[str]:
        if not args.message or not args.message.strip():
            raise ToolInputError("git commit needs a message; pass args.message.")
        return ["commit", *(["--all"] if args.all else []), "--message", args.message]

    def _reset(self, args: GitArgs) -> list[str]:
        if args.paths:
            if args.mode != "mixed":
                raise ToolInputError("git reset with paths only unstages them; drop `mode` or drop `paths`.")
            return ["reset", "--quiet", self._ref("HEAD" if args.ref is None else args.ref), "--", *self._paths(args)]
        return ["reset", f"--{args.mode}", self._ref("HEAD" if args.ref is None else args.ref)]

    def _stash(self, args: GitArgs) -> list[str]:
        if args.action in ("push", "list"):
            if args.index is not None:
                raise ToolInputError(f"git stash {args.action} does not take an index.")
            if args.action == "push":
                return ["stash", "push", *(["--message", args.message] if args.message else [])]
            return ["stash", "list"]
        if args.message is not None:
            raise ToolInputError(f"git stash {args.action} does not take a message.")
        entry = [f"stash@{{{args.index}}}"] if args.index is not None else []
        return ["stash", args.action, *entry]

    # -- helpers --------------------------------------------------------------------------

    def _paths(self, args: GitArgs) -> list[str]:
        return [self._ws.relative(self._ws.resolve(path, what="path")) for path in args.paths]

    @staticmethod
    def _ref(ref: str) -> str:
        if not _REF.fullmatch(ref):
            raise ToolInputError(
                f"ref `{ref[:80]}` is not a commit, branch, tag or range; refs start with a letter or digit "
                "and contain no spaces."
            )
        return ref

    def _execute(self, operation: str, argv: list[str]) -> str:
        command = ["git", "--no-pager", "-c", "core.quotepath=off", "-c", "color.ui=never", *argv]
        env = os.environ | {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_EDITOR": "true",
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "GIT_OPTIONAL_LOCKS": "0",
        }
        try:
            done = subprocess.run(
                command,
                cwd=self._ws.root,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=GIT_TIMEOUT_SECONDS,
            )
        except FileNotFoundError:
            raise ToolInputError("git is not installed or not on PATH; install git to use this tool.") from None
        except subprocess.TimeoutExpired:
            raise ToolInputError(f"git {operation} took over {GIT_TIMEOUT_SECONDS} s and was stopped.") from None
        out = done.stdout.decode("utf-8", errors="replace")
        err = done.stderr.decode("utf-8", errors="replace").strip()
        if done.returncode != 0:
            if "not a git repository" in err:
                raise ToolInputError(f"{self._ws.root} is not a git repository; run `git init` there first.")
            first = next((line for line in err.splitlines() if line.strip()), f"exit code {done.returncode}")
            raise ToolInputError(f"git {operation} failed: {first.strip()}")
        text = (out + ("\n" + err if err else "")).strip() or _EMPTY.get(operation, f"git {operation}: done.")
        if len(text) > MAX_OUTPUT_CHARS:
            text = text[:MAX_OUTPUT_CHARS] + f"\n… output cut at {MAX_OUTPUT_CHARS} characters; narrow it with paths."
        return text


_EMPTY = {
    "diff": "No differences.",
    "log": "No commits.",
    "status": "Nothing to report.",
}
