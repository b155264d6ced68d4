"""`loomkin-mcp`: serve a project over MCP, or try its tools from a terminal."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigError, LoomkinError, one_line
from .._version import __version__

if TYPE_CHECKING:
    from .._logging import McpLogBridge
    from ..config import Settings
    from ..project._registry import ProjectRegistry
    from ..server._server import LoomkinServer, TrustPromptWhen

EXIT_USAGE = 2
# An editor's config file is read up to this size by `setup`.
MAX_EDITOR_CONFIG_BYTES = 4 * 1024 * 1024

DESCRIPTION = """\
Serve Loomkin's coding tools (files, search, shell, git, symbols, language servers, the repo map and the
decision graph; `loomkin-mcp tools` lists them all) to an editor over the Model Context Protocol, under the
project's .loomkin.toml and LOOMKIN.md. With no COMMAND it serves over stdio.

Register `loomkin-mcp --stdio` as an MCP server in your editor (see README.md), or try it here:
  loomkin-mcp init                        write a starter .loomkin.toml
  loomkin-mcp tools                       list the tools
  loomkin-mcp call file_read '{"file_path": "README.md"}'
  loomkin-mcp lsp-status                  check the language servers
  loomkin-mcp upstream-status             check the upstream MCP servers
  loomkin-mcp repo-map --tokens 1024      the project's key definitions
  loomkin-mcp doctor                      check everything this project configures
  loomkin-mcp status                      the project, its servers, repo map and decision graph
  loomkin-mcp trust                       review and allow what the project's own files ask to run
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from .._logging import McpLogBridge, configure_stderr_logging

    # Serving, the log is the editor's (or the daemon's) record; a one-shot command in a terminal stays quiet.
    configure_stderr_logging(args.log_level or ("info" if args.command is None else "warning"))
    # Installed before the config loads, so its warnings reach the client once one connects.
    bridge = McpLogBridge().install()
    try:
        if args.command is None:
            if args.status_port is not None and (args.http or args.sse):
                raise ConfigError("--status-port is for stdio sessions; the HTTP daemon shows its page at / already.")
            return _serve(args, bridge)
        root = _project_root(args.root)
        if args.command == "init":
            return _init(root, args.force)
        from ..config import load_settings

        settings = load_settings(root, Path(args.config) if args.config else None)
        if args.command in ("doctor", "lsp-status", "upstream-status") and not args.log_level:
            # Their table reports each server's failure with its fix; the supervisors' warnings would repeat it.
            for name in ("loomkin_mcp.upstream", "loomkin_mcp.lsp", "loomkin_lsp_client"):
                logging.getLogger(name).setLevel(logging.ERROR)
        if args.command == "tools":
            return _list_tools(_build(root, settings, bridge))
        if args.command == "status":
            return _status(root, settings, bridge, args.json)
        if args.command == "call":
            return _call(_build(root, settings, bridge), args.tool, args.arguments)
        if args.command == "lsp-status":
            return _lsp_status(root, settings, args.json)
        if args.command == "repo-map":
            return _repo_map(_build(root, settings, bridge), args.tokens, args.focus)
        if args.command == "editor-config":
            return _editor_config(root, args.editor)
        if args.command == "setup":
            return _setup(root, args.editor, args.yes)
        if args.command == "doctor":
            return _doctor(root, settings, args.json)
        if args.command == "decisions":
            return _decisions_export(root, settings, args.export_format)
        if args.command == "upstream-status":
            return _upstream_status(root, settings, args.json, args.wait)
        assert args.command == "trust"
        return _trust(root, settings, args)
    except ConfigError as exc:
        print(f"loomkin-mcp: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _common_options(after_command: bool) -> argparse.ArgumentParser:
    """--root, --config and --log-level, taken before or after the command.

    After it they default to "not given" (SUPPRESS), so what was given before it is not reset by the
    command's own defaults (a parent parser's defaults would be).
    """
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS if after_command else None)
    common.add_argument(
        "--root", metavar="DIR",
        help="the project (default: serving, each client's first root, else the current directory; a command, the "
        "current directory)",
    )  # fmt: skip
    common.add_argument("--config", metavar="FILE", help="config file (default: <root>/.loomkin.toml)")
    common.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        type=str.lower,
        help="how much to log to stderr and to the client (default: info when serving, warning for a command)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common_options(after_command=False)
    parser = argparse.ArgumentParser(
        prog="loomkin-mcp",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"loomkin-mcp {__version__}")
    transport = parser.add_mutually_exclusive_group()
    transport.add_argument("--stdio", action="store_true", help="serve MCP over stdin/stdout (the default)")
    transport.add_argument("--http", action="store_true", help="serve streamable HTTP at http://HOST:PORT/mcp")
    transport.add_argument("--sse", action="store_true", help="serve legacy SSE at http://HOST:PORT/sse")
    parser.add_argument("--host", default="127.0.0.1", help="address for --http/--sse (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port for --http/--sse (default $PORT or 4200)")
    parser.add_argument(
        "--status-port", type=int, default=None, metavar="PORT",
        help="with stdio: also show this session's status page at http://127.0.0.1:PORT/",
    )  # fmt: skip
    parser.add_argument(
        "--token-file", metavar="FILE", help="bearer token clients must send (or LOOMKIN_TOKEN); needed off loopback"
    )
    parser.add_argument(
        "--max-sessions", type=_positive_int, default=100, metavar="N",
        help="live HTTP sessions at most; the one idle longest is closed to make room (default 100)",
    )  # fmt: skip
    parser.add_argument(
        "--project-idle-timeout", type=_positive_float, default=600.0, metavar="SECONDS",
        help="HTTP: close a project's language servers once no session has used it this long (default 600)",
    )  # fmt: skip
    parser.add_argument(
        "--session-idle-timeout", type=_positive_float, default=1800.0, metavar="SECONDS",
        help="close an HTTP session idle this long (default 1800)",
    )  # fmt: skip
    parser.add_argument(
        "--max-connections", type=_positive_int, default=1000, metavar="N",
        help="HTTP connections at once; more are answered 503 (default 1000)",
    )  # fmt: skip
    parser.add_argument(
        "--header-timeout", type=_positive_float, default=10.0, metavar="SECONDS",
        help="close an HTTP connection that has not sent a whole request head in this time (default 10)",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", metavar="[COMMAND]")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        # SUPPRESS: options given before the command are not reset by the subparser's defaults.
        return commands.add_parser(
            name, parents=[_common_options(after_command=True)], help=help_text, argument_default=argparse.SUPPRESS
        )

    init = command("init", "write .loomkin.toml from the shipped example")
    init.add_argument("--force", action="store_true", default=False, help="overwrite an existing .loomkin.toml")
    command("tools", "list the tools")
    call = command("call", "run one tool in-process and print its result")
    call.add_argument("tool", help="tool name, e.g. file_read")
    call.add_argument("arguments", nargs="?", default="{}", help="the tool's arguments as a JSON object")
    lsp_status = command("lsp-status", "start each language server once and report whether it works")
    lsp_status.add_argument("--json", action="store_true", default=False, help="print JSON instead of a table")
    status = command("status", "what the daemon serving this project shows (project, servers, map, graph)")
    status.add_argument("--json", action="store_true", default=False, help="print JSON (as /status.json) instead")
    repo_map = command("repo-map", "print the repo map (ranked definitions within a token budget)")
    repo_map.add_argument(
        "--tokens", type=_positive, default=None, help="token budget (default [context].max_repo_map_tokens)"
    )
    repo_map.add_argument("--focus", action="append", default=[], metavar="FILE", help="centre on this file")
    editor = command("editor-config", "print the MCP config snippet for an editor, with this install's paths")
    editor.add_argument("editor", choices=sorted(_editor_names()), help="the editor")
    setup = command("setup", "add loomkin-mcp to an editor's config file: shows the change, writes it when confirmed")
    setup.add_argument("editor", choices=sorted(_editor_names()), help="the editor")
    setup.add_argument("--yes", action="store_true", default=False, help="write without asking (for scripts)")
    doctor = command("doctor", "check the config, language servers, upstreams, endpoints, store and tools")
    doctor.add_argument("--json", action="store_true", default=False, help="print JSON instead of a table")
    decisions = command("decisions", "the decision graph: `decisions export --format mermaid|dot|json`")
    decisions.add_argument("action", choices=["export"], nargs="?", default="export", help="what to do (export)")
    decisions.add_argument("--format", choices=["mermaid", "dot", "json"], default="mermaid", dest="export_format")
    trust = command("trust", "review what this project's own files ask for (programs, URLs, shell) and allow it")
    trust_action = trust.add_mutually_exclusive_group()
    trust_action.add_argument("--list", action="store_true", default=False, help="list the trusted projects")
    trust_action.add_argument("--revoke", action="store_true", default=False, help="stop trusting this project")
    trust.add_argument("--yes", action="store_true", default=False, help="trust without asking (for scripts)")
    upstream = command("upstream-status", "connect to each upstream MCP server once and report its state")
    upstream.add_argument("--json", action="store_true", default=False, help="print JSON instead of a table")
    upstream.add_argument("--wait", type=float, default=15.0, help="seconds to wait for each upstream (default 15)")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number of 1 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds above 0")
    return value


def _project_root(raw: str | None) -> Path:
    if raw is None:
        return Path.cwd().resolve()
    root = Path(raw).expanduser()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"--root {raw}: is a file, not a directory; give the project's directory.")
    if not root.is_dir():
        raise ConfigError(f"--root {raw}: no such directory; give the project's directory.")
    return root.resolve()


def _init(root: Path, force: bool) -> int:
    from ..config import CONFIG_FILENAME

    target = root / CONFIG_FILENAME
    if target.exists() and not force:
        print(f"loomkin-mcp: {target} already exists; pass --force to overwrite it.", file=sys.stderr)
        return EXIT_USAGE
    example = resources.files("loomkin_mcp").joinpath("config/loomkin.toml.example").read_text(encoding="utf-8")
    target.write_text(example, encoding="utf-8")
    print(f"Wrote {target}; edit it, then register `loomkin-mcp --stdio` in your editor.")
    return 0


def _build(
    root: Path, settings: Settings, bridge: McpLogBridge, asks_trust: TrustPromptWhen | None = "after initialize"
) -> LoomkinServer:
    """The server of the one project at `root` (a one-shot command's, or `--root`'s)."""
    from ..project._registry import ProjectRegistry

    def settings_for(project_root: Path) -> Settings:
        assert project_root == root
        return settings

    return _build_for(ProjectRegistry(settings_for, pinned=root), bridge, asks_trust)


def _build_for(projects: ProjectRegistry, bridge: McpLogBridge, asks_trust: TrustPromptWhen | None) -> LoomkinServer:
    # Imported here so `--help`, `--version` and `init` never pay for building the server.
    import warnings

    from mcp import MCPDeprecationWarning

    from ..server._server import build_server

    # We serve clients of both protocol eras on purpose (logging, resources/subscribe).
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

    return build_server(projects, bridge, asks_trust)


def _serving(args: argparse.Namespace, idle_timeout: float | None, any_root: bool = True) -> ProjectRegistry:
    """The projects a serving process may open: `--root`'s alone, else each client's first root, with the current
    directory for clients that declare none (when it may be served: never /, ~ or a system place)."""
    from ..config import load_settings
    from ..project._registry import ProjectRegistry
    from ..workspace import refused_root

    config = Path(args.config) if args.config else None
    if args.root is not None:
        root = _project_root(args.root)
        settings = _enabled(load_settings(root, config), root)
        return ProjectRegistry(lambda _: settings, pinned=root)
    cwd = Path.cwd().resolve()
    why = refused_root(cwd)
    # Some editors (Claude Desktop) start servers in / or ~: those are never served by accident.
    if why is not None:
        logging.getLogger("loomkin_mcp.roots").info(
            "the current directory %s is not served because %s: each client is served its editor's first root "
            "(pass --root /path/to/project to serve one project)",
            cwd,
            why,
        )
    start = _enabled(load_settings(cwd, config), cwd) if why is None else None

    def settings_for(root: Path) -> Settings:
        return start if root == cwd and start is not None else _enabled(load_settings(root, config), root)

    fallback = cwd if why is None else None
    return ProjectRegistry(settings_for, fallback=fallback, idle_timeout=idle_timeout, any_root=any_root)


def _enabled(settings: Settings, root: Path) -> Settings:
    if not settings.requested.mcp.server_enabled:
        where = settings.path or root / ".loomkin.toml"
        raise ConfigError(
            f"serving {root} is disabled by `[mcp] server_enabled = false` in {where}; set it to true to serve it."
        )
    return settings


def _serve_http(args: argparse.Namespace, bridge: McpLogBridge) -> int:
    import anyio

    from ..config import load_environment
    from ..transports._http import Limits, check_binding, check_port_free, connection_help, local_address, serve

    token = os.environ.get("LOOMKIN_TOKEN") or None
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"--token-file {args.token_file}: cannot be read ({exc.strerror}).") from None
    # Without a token any local program can connect: it may name only folders beneath the daemon's own.
    projects = _serving(args, args.project_idle_timeout, any_root=token is not None)
    check_binding(args.host, token)
    transport = "sse" if args.sse else "streamable-http"
    port = args.port or load_environment(os.environ).port
    check_port_free(args.host, port)
    print(connection_help(transport, args.host, port, token is not None, projects), file=sys.stderr)
    limits = Limits(args.max_sessions, args.session_idle_timeout, args.max_connections, args.header_timeout)
    # Over HTTP any local program can connect: the trust question goes only to a client holding the token.
    server = _build_for(projects, bridge, asks_trust="on the first call" if token is not None else None)
    from ..transports._daemons import announced

    with announced(projects.pinned, f"http://{local_address(args.host)}:{port}"):
        anyio.run(serve, server, transport, args.host, port, token, limits)
    return 0


def _serve(args: argparse.Namespace, bridge: McpLogBridge) -> int:
    if args.http or args.sse:
        return _serve_http(args, bridge)
    projects = _serving(args, idle_timeout=None)
    if sys.stdin.isatty():
        served = projects.default_root() or "the editor's first root"
        print(
            f"loomkin-mcp {__version__} serves {served} over stdio and waits for an MCP client; "
            "register it in your editor (README.md) or try `loomkin-mcp tools`. Ctrl-C stops it.",
            file=sys.stderr,
        )
    import anyio

    from ..transports._stdio import serve_stdio

    server = _build_for(projects, bridge, "after initialize")
    if args.status_port is None:
        anyio.run(serve_stdio, server)
        return 0
    from ..transports._http import check_port_free, page_server

    check_port_free("127.0.0.1", args.status_port)
    page = page_server(server, args.status_port)
    print(f"Status page of this session: http://127.0.0.1:{args.status_port}/", file=sys.stderr)

    async def both() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(page.serve)
            try:
                await serve_stdio(server)
            finally:
                page.should_exit = True

    anyio.run(both)
    return 0


def _status(root: Path, settings: Settings, bridge: McpLogBridge, as_json: bool) -> int:
    """What the daemon serving the project shows, when one runs; else a fresh look (nothing started)."""
    import anyio

    from ..server._status import live_status, render_text, snapshot
    from ..transports._daemons import running

    daemon = running(root)
    if daemon is not None:
        status, problem = live_status(daemon.url, os.environ.get("LOOMKIN_TOKEN"), root)
        if status is not None and status["project"] is None:
            status, problem = None, "serves other projects and has not opened this one"
        if status is not None:
            print(
                json.dumps(status, indent=2, ensure_ascii=False)
                if as_json
                else f"The daemon serving this project (pid {daemon.pid}, {daemon.url}/) shows:\n{render_text(status)}"
            )
            return 0
        print(f"loomkin-mcp: the daemon at {daemon.url}/ (pid {daemon.pid}) {problem}; this is a fresh look "
              "instead.", file=sys.stderr)  # fmt: skip
    server = _build(root, settings, bridge)

    async def gather() -> dict[str, Any]:
        await server.services.repomap.index()  # from its disk cache when there is one
        try:
            return snapshot(server, open_store=True)
        finally:
            await server.close()

    status = anyio.run(gather)
    if as_json:
        print(json.dumps(status, indent=2, ensure_ascii=False))
    else:
        print(f"No daemon serves this project now; a fresh look (no server started):\n{render_text(status)}")
    return 0


def _list_tools(server: LoomkinServer) -> int:
    import anyio

    tools = anyio.run(server.list_tools)
    width = max((len(tool.name) for tool in tools), default=0)
    for tool in tools:
        hints = tool.annotations
        kind = "read-only" if hints and hints.read_only_hint else "changes things"
        summary = (tool.description or "").strip().splitlines()[0]
        print(f"{tool.name:<{width}}  {kind:<15} {summary}")
    return 0


def _lsp_status(root: Path, settings: Settings, as_json: bool) -> int:
    import anyio

    from ..lsp._service import LspService
    from ..sandbox._service import Sandbox
    from ..workspace import Workspace

    workspace = Workspace(root, settings)
    service = LspService(workspace, Sandbox(workspace))
    if not service.enabled:
        print("Language servers are off: `[lsp] enabled = false` in .loomkin.toml.")
        return 0
    checks = anyio.run(service.check)
    missing = service.missing()
    if as_json:
        rows = [
            {
                "name": check.spec.name,
                "command": " ".join([check.spec.command, *check.spec.args]),
                "languages": sorted(check.spec.languages | check.spec.extensions),
                "detected": check.detected,
                "ok": check.ok,
                "server": check.server_version,
                "seconds": round(check.seconds, 3),
                "error": check.error,
            }
            for check in checks
        ]
        rows += [
            {"name": None, "command": None, "languages": languages, "detected": False, "ok": False, "server": None,
             "seconds": 0.0, "error": f"no language server for {', '.join(languages)}", "install": hint}
            for hint, languages in missing.items()
        ]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0 if all(row["ok"] for row in rows) else 1
    if not checks and not missing:
        print(f"No language servers needed: {root} has no source files in a language they serve.")
        return 0
    origin = "from [lsp].servers" if checks and not checks[0].detected else "detected on PATH"
    print(f"Language servers for {root} ({origin}):")
    for check in checks:
        languages = ", ".join(sorted(check.spec.languages | check.spec.extensions))
        if check.ok:
            started = f"started in {check.seconds:.2f} s ({check.server_version})"
            print(f"  ✔ {check.spec.name:<28} {languages:<30} {started}")
        else:
            print(f"  ✘ {check.spec.name:<28} {languages:<30} {check.error}")
    for hint, languages in missing.items():
        print(f"  ✘ {'(none)':<28} {', '.join(languages):<30} no language server; install one: {hint}")
    return 0 if all(check.ok for check in checks) and not missing else 1


def _upstream_status(root: Path, settings: Settings, as_json: bool, wait: float) -> int:
    import dataclasses

    import anyio

    from .._redact import redacted
    from ..upstream import UpstreamPool, UpstreamStatus
    from ..workspace import Workspace

    pool = UpstreamPool(Workspace(root, settings).config.mcp, root)

    async def check() -> list[UpstreamStatus]:
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run)
            await pool.wait_settled(wait)
            rows = pool.status()  # before the cancel below takes them down again
            group.cancel_scope.cancel()
        return rows

    # Shown with their credentials masked, as everywhere else: this output gets pasted into issues and chats.
    rows = [UpstreamStatus(**redacted(dataclasses.asdict(row))) for row in anyio.run(check)]
    if as_json:
        print(json.dumps([dataclasses.asdict(row) for row in rows], indent=2))
    elif not rows:
        print("No upstream MCP servers: add them to [mcp].servers in .loomkin.toml.")
    else:
        print(f"Upstream MCP servers for {root}:")
        for row in rows:
            if row.state == "ready":
                print(f"  ✔ {row.name:<20} {row.transport:<16} {row.tools} tools   {row.target}")
            else:
                print(f"  ✘ {row.name:<20} {row.state:<16} {row.last_error or 'not connected in time'}")
                if row.fix:
                    print(f"    {'':<37} fix: {row.fix}")
    return 0 if all(row.state == "ready" for row in rows) else 1


def _positive(raw: str) -> int:
    """argparse's type for a count: a whole number above zero, or one sentence saying so."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{raw} is not a whole number above zero")
    return value


def _repo_map(server: LoomkinServer, tokens: int | None, focus: list[str]) -> int:
    import anyio

    workspace = server.services.workspace
    for name in focus:
        if not workspace.resolve(name, what="--focus").is_file():
            print(f"loomkin-mcp: --focus {name}: no such file in the project; give a file's path.", file=sys.stderr)
            return EXIT_USAGE

    terminal = sys.stderr.isatty()

    async def bar(done: float, total: float | None, message: str | None) -> None:
        if terminal and total:
            width = 30
            filled = int(width * done / total)
            end = "\n" if done >= total else ""
            print(
                f"\rindexing [{'#' * filled}{'.' * (width - filled)}] {int(done)}/{int(total)}",
                end=end,
                file=sys.stderr,
            )

    async def render() -> str:
        try:
            return await server.services.repomap.render(focus or None, None, tokens, bar, whole=True)
        finally:
            await server.close()

    try:
        print(anyio.run(render))
    except ConfigError:
        raise
    except LoomkinError as exc:
        print(f"loomkin-mcp: {exc}", file=sys.stderr)
        return 1
    return 0


def _editor_names() -> list[str]:
    from ._editors import EDITORS

    return list(EDITORS)


def _editor_config(root: Path, name: str) -> int:
    from ._editors import EDITORS, snippet

    command = str(Path(sys.executable).parent / "loomkin-mcp")
    # stdout stays pure JSON (to pipe into a file or `jq`); where it goes is said on stderr.
    print(f"Merge this into {EDITORS[name].destination.format(command=shlex.quote(command))}:", file=sys.stderr)
    print(json.dumps(snippet(EDITORS[name], command, str(root)), indent=2))
    return 0


def _setup(root: Path, name: str, yes: bool) -> int:
    """The editor's config file with loomkin-mcp in it: the change shown as a diff, written when confirmed."""
    import difflib

    from ._editors import EDITORS, NotPlainJson, config_file, merged, read_config, snippet, write_config

    editor = EDITORS[name]
    entry = snippet(editor, str(Path(sys.executable).parent / "loomkin-mcp"), str(root))
    target = config_file(editor, root)
    try:
        before = read_config(editor, root, MAX_EDITOR_CONFIG_BYTES)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{target} cannot be read ({getattr(exc, 'strerror', None) or exc}); fix it first.") from None
    try:
        after = merged(before, entry)
    except NotPlainJson as problem:
        print(f"loomkin-mcp: {target} was left alone: {problem}; add this to it by hand:", file=sys.stderr)
        print(json.dumps(entry, indent=2))
        return 1
    if after == before:
        print(f"{target} already starts loomkin-mcp as this install would; nothing to change.")
        return 0
    change = difflib.unified_diff(before.splitlines(), after.splitlines(), str(target), str(target), lineterm="")
    print("\n".join(change))
    if not yes:
        if not sys.stdin.isatty():
            print(f"loomkin-mcp: nothing written; run `loomkin-mcp setup {name} --yes` to write {target}.",
                  file=sys.stderr)  # fmt: skip
            return 1
        if input(f"Write {target}? [y/N] ").strip().lower() not in ("y", "yes"):
            print("Nothing written.")
            return 1
    try:
        write_config(editor, root, after)
    except OSError as exc:
        raise ConfigError(f"{target} cannot be written ({exc.strerror or exc}); nothing was changed.") from None
    print(f"Wrote {target}; restart {name} (or reload its MCP servers) to start loomkin-mcp.")
    return 0


def _doctor(root: Path, settings: Settings, as_json: bool) -> int:
    import anyio

    from ..workspace import Workspace
    from ._doctor import run_checks

    checks = anyio.run(run_checks, Workspace(root, settings))
    if as_json:
        print(json.dumps([check.as_dict() for check in checks], indent=2, ensure_ascii=False))
    else:
        print(f"loomkin-mcp {__version__} doctor for {root}:")
        for check in checks:
            mark = "✔" if check.ok else "✘"
            print(f"  {mark} {check.name:<28} {check.detail}")
            if check.fix:
                print(f"    {'':<28} fix: {check.fix}")
        failed = sum(not check.ok for check in checks)
        print("All good." if not failed else f"{failed} problem(s) found.")
    return 0 if all(check.ok for check in checks) else 1


def _trust(root: Path, settings: Settings, args: argparse.Namespace) -> int:
    from ..workspace import TrustStore, Workspace

    store = TrustStore()
    if args.list:
        entries = store.entries()
        if not entries:
            print(f"No project is trusted ({store.path}).")
        for where, entry in sorted(entries.items()):
            print(f"{where}  (trusted {entry.get('trusted_at', '?')})")
            for text in entry.get("grants", []):
                print(f"  - {one_line(str(text))}")
        return 0
    if args.revoke:
        if store.revoke(root):
            print(f"{root} is no longer trusted; what its files ask for is held back from now on.")
        else:
            print(f"{root} was not trusted; nothing to revoke.")
        return 0
    trust = Workspace(root, settings, store).trust
    grants = trust.grants()
    if not grants:
        print(f"Nothing in {root}'s own files needs trust: they run no program, reach no URL, allow no shell.")
        return 0
    state = "already trusted" if trust.trusted else "not trusted"
    print(f"{root} ({state}) asks loomkin-mcp to:\n{trust.describe(grants)}")
    if trust.trusted:
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "loomkin-mcp: nothing was recorded: there is no terminal to confirm on; run this in a terminal, "
                "or pass --yes to trust without asking.",
                file=sys.stderr,
            )
            return 1
        answer = input("Trust exactly this content? Any change to it will ask again. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing was recorded; the project stays restricted.")
            return 1
    trust.grant()
    print(f"Trusted. Recorded in {store.path}.")
    return 0


def _decisions_export(root: Path, settings: Settings, export_format: str) -> int:
    from ..decisions._service import DecisionService
    from ..sandbox._service import Sandbox
    from ..workspace import Workspace

    workspace = Workspace(root, settings)
    service = DecisionService(workspace, Sandbox(workspace))
    try:
        print(service.export(export_format))
    except LoomkinError as exc:
        print(f"loomkin-mcp: {exc}", file=sys.stderr)
        return 1
    finally:
        service.close()
    return 0


def _call(server: LoomkinServer, tool: str, raw_arguments: str) -> int:
    import anyio

    try:
        arguments = json.loads(raw_arguments)
    except json.JSONDecodeError as exc:
        print(f"loomkin-mcp: arguments are not valid JSON ({exc.msg} at column {exc.colno}).", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(arguments, dict):
        print('loomkin-mcp: arguments must be a JSON object, e.g. \'{"file_path": "README.md"}\'.', file=sys.stderr)
        return EXIT_USAGE

    async def call_and_close() -> object:
        try:
            return await server.call_tool(tool, arguments)
        finally:
            await server.close()

    result = anyio.run(call_and_close)
    text = "\n".join(getattr(block, "text", "") for block in getattr(result, "content", []))
    print(text, file=sys.stderr if getattr(result, "is_error", False) else sys.stdout)
    return 1 if getattr(result, "is_error", False) else 0
