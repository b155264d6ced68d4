"""`loomkin-mcp doctor`: is everything this project configures actually working? One fix per failure."""

from __future__ import annotations

import importlib
import subprocess
from dataclasses import asdict, dataclass

import anyio

from .._errors import counted
from ..config import LoomkinConfig, Settings
from ..workspace import Workspace

UPSTREAM_WAIT_SECONDS = 15.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


async def run_checks(workspace: Workspace) -> list[Check]:
    """Every check at once, each bounded in time; results in a stable order."""
    results: dict[str, list[Check]] = {}

    async def collect(key: str, checks: object) -> None:
        results[key] = await checks  # type: ignore[misc]

    async with anyio.create_task_group() as group:
        # Language servers and upstreams are mostly waiting on other processes; the rest (imports and
        # loading grammars included) runs in threads meanwhile.
        group.start_soon(collect, "1 lsp", _language_servers(workspace))
        group.start_soon(collect, "2 upstreams", _upstreams(workspace))
        group.start_soon(collect, "3 providers", anyio.to_thread.run_sync(_providers, workspace.config))
        group.start_soon(collect, "4 decisions", anyio.to_thread.run_sync(_decision_store, workspace))
        group.start_soon(collect, "5 local", anyio.to_thread.run_sync(lambda: [_ripgrep(), _grammars()]))
    head = [_config(workspace.settings), _trust(workspace), _rules(workspace), _sandbox(workspace)]
    # `[teams]` is Loomkin's own agent's: said only to a person who set it, who may expect it to act here.
    configured = "teams" in workspace.settings.requested.model_fields_set
    tail = [Check("teams", True, workspace.config.teams.summary())] if configured else []
    return head + [check for key in sorted(results) for check in results[key]] + tail


def _config(settings: Settings) -> Check:
    files = [("the project's", settings.path, settings.project), ("your own", settings.user_path, settings.user)]
    shown = [f"{whose} {path}" for whose, path, _ in files if path is not None]
    where = "; ".join(shown) if shown else "no .loomkin.toml and no config of yours, so the defaults serve"
    unknown = [
        f"{key} in {path}" for _, path, table in files if path is not None for key in _unknown_keys_of(table)
    ]  # fmt: skip
    if unknown:
        return Check(
            "config", False, f"{where}; unknown keys, ignored: {', '.join(unknown[:5])}",
            "correct their spelling: an unknown key changes nothing",
        )  # fmt: skip
    return Check("config", True, where)


def _unknown_keys_of(table: dict[str, object]) -> list[str]:
    from ..config import LoomkinConfig, unknown_keys

    try:
        return unknown_keys(LoomkinConfig.model_validate(table))
    except ValueError:  # a table that does not validate was refused at load already
        return []


def _trust(workspace: Workspace) -> Check:
    held = workspace.trust.held_back()
    if not held:
        granted = bool(workspace.trust.grants())
        return Check("trust", True, "trusted: what the project's files ask for is in force" if granted
                     else "nothing in the project's files needs trust")  # fmt: skip
    kinds = ", ".join(sorted({grant.kind for grant in held}))
    return Check(
        "trust", False, f"not trusted: {counted(len(held), 'item')} held back ({kinds})",
        f"review and allow them with `loomkin-mcp trust --root {workspace.root}`",
    )  # fmt: skip


def _sandbox(workspace: Workspace) -> Check:
    from ..sandbox._service import Sandbox

    state = Sandbox(workspace).state()
    if state.fix is None:  # confined, or unconfined by the person's own `[shell] sandbox = false`
        return Check("sandbox", True, state.detail)
    return Check("sandbox", False, state.detail + ", so shell refuses to run commands", state.fix)


def _rules(workspace: Workspace) -> Check:
    rules = workspace.rules
    if rules.path is None:
        return Check("LOOMKIN.md", True, "none: no project instructions, and shell commands are off")
    shell = ", ".join(rules.shell_allowed) or "off (no Shell: rule)"
    if rules.shell_allowed and not workspace.trust.trusted:
        shell += " (held back until trusted)"
    enforced = len(rules.shell_allowed) + len(rules.shell_denied) + len(rules.write_allowed) + len(rules.write_denied)
    summary = f"{counted(enforced, 'enforced permission')} and {counted(len(rules.rules), 'other instruction')}"
    return Check("LOOMKIN.md", True, f"{rules.path.name}: {summary}; shell: {shell}")


async def _language_servers(workspace: Workspace) -> list[Check]:
    from ..lsp._service import LspService
    from ..sandbox._service import Sandbox

    service = LspService(workspace, Sandbox(workspace))
    if not service.enabled:
        return [Check("language servers", True, "off: [lsp] enabled = false")]
    checks = await service.check(grace=0.2)
    missing = [
        Check(f"lsp for {', '.join(languages)}", False,
              f"no language server for this project's {', '.join(languages)} files, so edits get no diagnostics",
              f"install one: {hint}")
        for hint, languages in service.missing().items()
    ]  # fmt: skip
    if not checks and not missing:
        return [Check("language servers", True, "none needed: no source files in a language they serve")]
    return missing + [
        Check(f"lsp {c.spec.name}", True, f"started in {c.seconds:.2f} s ({c.server_version})")
        if c.ok
        else Check(
            f"lsp {c.spec.name}", False, c.error or "did not start", "install it, or fix its entry in [lsp].servers"
        )
        for c in checks
    ]


async def _upstreams(workspace: Workspace) -> list[Check]:
    from ..upstream._preflight import fix_for, unreachable

    servers = workspace.config.mcp.servers
    # A missing program or a closed port is told at once, without loading the MCP client (0.8 s).
    errors = await anyio.to_thread.run_sync(lambda: {entry.name: unreachable(entry) for entry in servers})
    checks = {
        entry.name: Check(f"upstream {entry.name}", False, error, fix_for(entry, error))
        for entry in servers
        if (error := errors[entry.name])
    }
    if len(checks) < len(servers):
        module = await anyio.to_thread.run_sync(importlib.import_module, "loomkin_mcp.upstream._pool")
        config = workspace.config.mcp.model_copy(update={"servers": [e for e in servers if e.name not in checks]})
        pool = module.UpstreamPool(config, workspace.root)
        async with anyio.create_task_group() as group:
            group.start_soon(pool.run)
            await pool.wait_settled(UPSTREAM_WAIT_SECONDS)
            rows = pool.status()
            group.cancel_scope.cancel()
        for row in rows:
            checks[row.name] = (
                Check(f"upstream {row.name}", True, f"{row.tools} tools via {row.transport}")
                if row.state == "ready"
                else Check(
                    f"upstream {row.name}",
                    False,
                    row.last_error or "did not connect in time",
                    row.fix or "start it, or fix its entry in [mcp].servers",
                )  # fmt: skip
            )
    return [checks[entry.name] for entry in servers]


def _providers(config: LoomkinConfig) -> list[Check]:
    from ..providers import ProviderClient, ProviderError

    checks = []
    for name, endpoint in config.provider.endpoints.items():
        try:
            models = ProviderClient(name, endpoint).list_models()
        except ProviderError as exc:
            fix = f"start {name}, or fix [provider.endpoints].{name} (url must include /v1; auth_key)"
            checks.append(Check(f"provider {name}", False, str(exc), fix))
            continue
        shown = ", ".join(models[:3]) + (" …" if len(models) > 3 else "")
        checks.append(Check(f"provider {name}", True, f"{len(models)} models at {endpoint.url}: {shown}"))
    return checks


def _decision_store(workspace: Workspace) -> list[Check]:
    from .._errors import LoomkinError
    from ..decisions._service import DecisionService
    from ..sandbox._service import Sandbox

    service = DecisionService(workspace, Sandbox(workspace))
    if not service.enabled:
        return [Check("decision store", True, "off: [decisions] enabled = false")]
    try:
        store = service.store
        if store.backend == "sqlite":
            return [Check("decision store", True, f".loomkin/decisions.db (SQLite), {store.count()} nodes")]
        graphs = store.graphs()
        detail = f"PostgreSQL (DATABASE_URL), graph `{store.graph}`: {graphs.get(store.graph, 0)} nodes"
        others = len(set(graphs) - {store.graph, ""})
        if others:
            detail += f"; {others} other project graph(s) in the same database, not shown here"
        if graphs.get("", 0) and store.graph:
            detail += (f"; {graphs['']} nodes from before graphs were per project are in the graph `` "
                       '([decisions] graph = "" reads them)')  # fmt: skip
        return [Check("decision store", True, detail)]
    except LoomkinError as exc:
        return [
            Check("decision store", False, str(exc), "start PostgreSQL or fix DATABASE_URL, or unset it for SQLite")
        ]
    finally:
        service.close()


def _ripgrep() -> Check:
    from ..search._service import find_rg

    rg = find_rg()
    if rg is None:
        return Check(
            "ripgrep", False, "no rg: content_search uses its slower Python fallback", "pip install 'ripgrep~=14.1'"
        )
    try:
        version = subprocess.run([rg, "--version"], capture_output=True, text=True, timeout=10).stdout.split("\n")[0]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("ripgrep", False, f"{rg} does not run ({exc})", "reinstall: pip install 'ripgrep~=14.1'")
    return Check("ripgrep", True, f"{version} ({rg})")


def _grammars() -> Check:
    from ..repomap import GRAMMARS
    from ..syntax import grammar_loads

    missing = [grammar.name for grammar in GRAMMARS if not grammar_loads(grammar)]
    if missing:
        wheels = " ".join(sorted({f"tree-sitter-{name}" for name in missing}))
        return Check("tree-sitter grammars", False, f"missing: {', '.join(missing)}", f"pip install {wheels}")
    return Check("tree-sitter grammars", True, ", ".join(grammar.name for grammar in GRAMMARS))
