"""Loomkin's git operations, built as argv by us so that no value can become an option."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .._errors import PermissionRefused, ToolInputError
from .._fs import OwnFileRefused, read_own_file
from ..sandbox._service import Sandbox
from ..workspace import GitPrograms, Workspace, enclosing_repository, git_environment, is_protected

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


def git_invocation(workspace: Workspace, programs: GitPrograms | None) -> list[str]:
    """`git` with the options under which it works on the project's own repository and runs no program the
    configuration names (a trusted project's repository programs excepted: the person allowed them).

    Used by the git tool, the commit scanner and the map's history alike. The repository is named with
    `--git-dir`/`--work-tree` (never discovered), each program-running key is overridden on the command
    line, which wins over every config file, and submodules are never entered.
    """
    argv = ["git", "--no-pager", "-c", "core.quotepath=off", "-c", "color.ui=never"]
    if programs is None:
        return argv
    if programs.refused:
        raise ToolInputError(programs.refused)
    if programs.unreadable:
        raise ToolInputError(f"{programs.unreadable}, so git is not run; fix .git/config in {workspace.root}.")
    argv += [f"--git-dir={programs.git_dir}", f"--work-tree={workspace.root}"]
    for key, value in programs.overrides(workspace.trust.trusted).items():
        argv += ["-c", f"{key}={value}"]
    return argv


def run_git(
    workspace: Workspace, args: list[str], timeout: float, sandbox: Sandbox, writes: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run `git ARGS` in the project as `git_invocation` says, inside the sandbox (`writes`: it may change the
    repository); OSError / TimeoutExpired as subprocess raises them."""
    env = git_environment()
    programs = workspace.trust.git_programs()  # read once: each read stats git's config files and hooks
    if programs is None:
        # No repository of its own: git must not find one above the project.
        env["GIT_CEILING_DIRECTORIES"] = str(workspace.root.parent)
    git_dir = programs.git_dir if programs is not None else None
    confined = sandbox.git([*git_invocation(workspace, programs), *args], env, writes, git_dir)
    try:
        return subprocess.run(
            confined.argv, cwd=workspace.root, env=confined.env, pass_fds=confined.pass_fds,
            stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
        )  # fmt: skip
    finally:
        confined.close()


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


def refuse_git_program_options(words: list[str], root: Path | None = None) -> None:
    """Refuse git arguments (after `git`) that could run a program or reach outside the project.

    Long options are checked as git reads them, abbreviations included (`--upload-p=…`). With `root`,
    an argument naming a path outside it is refused too: the sandbox keeps writes in, but a read such
    as `git diff --no-index /outside/secret /dev/null` or `git commit -F /outside/secret` would show
    the file's content.
    """
    if root is not None:
        for word in words:
            outside = _path_outside(word, root)
            if outside is not None:
                raise PermissionRefused(
                    f"git argument `{word[:120]}` names {outside}, outside the project; git may only read and write "
                    "inside it."
                )
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


def _path_outside(word: str, root: Path) -> str | None:
    """The outside path an argument names (`/x`, `../x`, `--file=/x`, `-F/x`, `~/x`), or None."""
    candidates = [word]
    if word.startswith("-"):
        value = word.split("=", 1)[1] if "=" in word else (word[2:] if not word.startswith("--") else "")
        candidates = [value] if value else []
    for candidate in candidates:
        if candidate in ("/dev/null", "-"):
            continue
        if candidate.startswith("~"):
            return candidate
        if candidate.startswith("/") or candidate == ".." or candidate.startswith("../") or "/../" in candidate:
            real = Path(os.path.realpath(root / candidate))
            if not real.is_relative_to(root):
                return str(real)
    return None


class GitService:
    def __init__(self, workspace: Workspace, sandbox: Sandbox) -> None:
        self._ws = workspace
        self._sandbox = sandbox

    def command_line(self, operation: str, args: GitArgs | None) -> str:
        """The whole command as it will run (`git reset --hard HEAD~3`), for the person approving it."""
        return shlex.join(["git", *self._argv(operation, args or GitArgs())])

    def run(self, operation: str, args: GitArgs | None) -> str:
        args = args or GitArgs()
        argv = self._argv(operation, args)
        self._refuse_touching_protected(operation, args)
        output = self._execute(operation, argv, writes=not is_read_only(operation, args))
        if not is_read_only(operation, args):
            logger.info("git %s done", operation)
        return output

    # -- argv per operation ---------------------------------------------------------------

    def _argv(self, operation: str, args: GitArgs) -> list[str]:
        given = args.model_fields_set - _FIELDS[operation]
        if given:
            wanted = ", ".join(sorted(_FIELDS[operation])) or "nothing"
            raise ToolInputError(f"git {operation} does not take {', '.join(sorted(given))}; it takes {wanted}.")
        argv: list[str] = getattr(self, f"_{operation}")(args)
        return argv

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

    # -- loomkin's own files -----------------------------------------------------------------

    def _refuse_touching_protected(self, operation: str, args: GitArgs) -> None:
        """A stash or reset must not swap LOOMKIN.md, `.loomkin.toml` or `.loomkin/` behind the person's back."""
        if operation == "stash" and args.action == "push":
            touched = self._protected_paths(["diff", "--name-only", "-z", "HEAD", "--"])
            what = "set aside your uncommitted changes to"
        elif operation == "stash" and args.action in ("pop", "apply"):
            entry = f"stash@{{{args.index or 0}}}"
            touched = self._protected_paths(["diff", "--name-only", "-z", f"{entry}^1", entry, "--"])
            touched += self._protected_paths(["ls-tree", "-r", "--name-only", "-z", f"{entry}^3"], missing_ok=True)
            what = "bring back a stashed version of"
        elif operation == "reset" and args.mode == "hard" and not args.paths:
            ref = self._ref("HEAD" if args.ref is None else args.ref)
            touched = self._protected_paths(["diff", "--name-only", "-z", ref, "--"])
            touched += self._differing_in_tree(ref)
            what = "overwrite"
        else:
            return
        if touched:
            names = ", ".join(sorted(set(touched))[:5])
            raise PermissionRefused(
                f"git {operation} would {what} {names}, which hold the project's loomkin settings that tools may not "
                "change; the person can do this themselves in a terminal."
            )

    def _protected_paths(self, argv: list[str], missing_ok: bool = False) -> list[str]:
        done = run_git(self._ws, argv, GIT_TIMEOUT_SECONDS, self._sandbox)
        if done.returncode != 0:
            if missing_ok:
                return []
            first = done.stderr.decode("utf-8", errors="replace").strip().splitlines()[:1]
            raise ToolInputError(f"git {argv[0]} failed: {first[0] if first else f'exit code {done.returncode}'}")
        names = done.stdout.decode("utf-8", errors="replace").split("\0")
        return [name for name in names if name and is_protected(name)]

    def _differing_in_tree(self, ref: str) -> list[str]:
        """Protected files in `ref`'s tree whose content differs from the work tree's (untracked ones included)."""
        done = run_git(self._ws, ["ls-tree", "-r", "-z", "--full-tree", ref], GIT_TIMEOUT_SECONDS, self._sandbox)
        if done.returncode != 0:
            return []
        differing = []
        for record in done.stdout.decode("utf-8", errors="replace").split("\0"):
            meta, _, name = record.partition("\t")
            if not name or not is_protected(name):
                continue
            try:
                found = read_own_file(self._ws.root / name, self._ws.root, 16 * 1024 * 1024)
            except OwnFileRefused:
                found = None
            blob = meta.split()[-1]
            if found is None or _blob_id(found.data, len(blob)) != blob:
                differing.append(name)
        return differing

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

    def _execute(self, operation: str, argv: list[str], writes: bool) -> str:
        try:
            done = run_git(self._ws, argv, GIT_TIMEOUT_SECONDS, self._sandbox, writes)
        except FileNotFoundError:
            raise ToolInputError("git is not installed or not on PATH; install git to use this tool.") from None
        except subprocess.TimeoutExpired:
            raise ToolInputError(f"git {operation} took over {GIT_TIMEOUT_SECONDS} s and was stopped.") from None
        out = done.stdout.decode("utf-8", errors="replace")
        err = done.stderr.decode("utf-8", errors="replace").strip()
        if done.returncode != 0:
            if "not a git repository" in err:
                above = enclosing_repository(self._ws.root)
                if above is not None:
                    raise ToolInputError(
                        f"{self._ws.root} has no repository of its own (it is a part of the one at {above}), and "
                        f"loomkin runs git only on the project's own; serve {above} with --root to use git."
                    )
                raise ToolInputError(f"{self._ws.root} is not a git repository; run `git init` there first.")
            first = next((line for line in err.splitlines() if line.strip()), f"exit code {done.returncode}")
            raise ToolInputError(f"git {operation} failed: {first.strip()}")
        text = (out + ("\n" + err if err else "")).strip() or _EMPTY.get(operation, f"git {operation}: done.")
        if len(text) > MAX_OUTPUT_CHARS:
            text = text[:MAX_OUTPUT_CHARS] + f"\n… output cut at {MAX_OUTPUT_CHARS} characters; narrow it with paths."
        return text


def _blob_id(data: bytes, length: int) -> str:
    """git's object id of a file with this content (SHA-1, or SHA-256 in a SHA-256 repository)."""
    digest = hashlib.sha256 if length == 64 else hashlib.sha1
    return digest(b"blob %d\0" % len(data) + data).hexdigest()


_EMPTY = {
    "diff": "No differences.",
    "log": "No commits.",
    "status": "Nothing to report.",
}
