"""What the server is doing, for people and scripts: `/health`, `/status.json` and `loomkin-mcp status`.

Read-only: a snapshot starts nothing (no language server, no index, no store is opened for it),
and shows no secret — tool arguments are shortened, file contents never shown, credentials masked.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import counted
from .._redact import redacted
from .._version import __version__
from ._subscriptions import client_of

if TYPE_CHECKING:
    from ..project._registry import Project
    from ..project._services import Services
    from ._server import LoomkinServer

# The status page lists each open file's first diagnostics, worst first (the counts cover them all).
MESSAGES_PER_FILE = 25
# A live daemon's /status.json is read up to this size (the page's own feed caps what it holds).
MAX_LIVE_STATUS_BYTES = 16 * 1024 * 1024


def health(started: float) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "uptime_s": round(time.monotonic() - started, 1)}


def snapshot(server: LoomkinServer, open_store: bool = False, project: Path | None = None) -> dict[str, Any]:
    """Everything the status page shows: every open project in brief, and the most recently used one in full
    (none for a daemon whose clients have not opened one yet: a snapshot opens nothing).
    `open_store` for a person's `loomkin-mcp status` in a terminal; `project` shows that one in full instead (none
    when it is not open)."""
    projects = server.projects.projects()
    shown = server.projects.find(project) if project is not None else projects[0] if projects else None
    sessions = [(session, since) for session, since in reversed(server.notifier.clients())]
    state: dict[str, Any] = {
        **health(server.started),
        "projects": [_brief(server, project) for project in projects],
        "sessions": [_session(server, session, since) for session, since in sessions],
        "tool_calls": server.calls.recent(),
    }
    if shown is None:
        return redacted({**state, "project": None, **_NOTHING_RUNS})
    services, upstreams = shown.made()
    workspace = shown.workspace
    rules = workspace.rules
    held = workspace.trust.held_back()
    return redacted(
        {
            **state,
            "project": {
                "root": str(workspace.root),
                "config": str(workspace.settings.path) if workspace.settings.path else None,
                "trusted": not held,
                "held_back": [grant.text for grant in held],
                "rules": {
                    "file": rules.path.name if rules.path else None,
                    "rules": list(rules.rules),
                    "shell_allowed": [] if held else list(rules.shell_allowed),
                    "shell_denied": list(rules.shell_denied),
                    "write_allowed": list(rules.write_allowed),
                    "write_denied": list(rules.write_denied),
                },
            },
            # A project no call has used yet has no services: nothing runs, and looking makes none.
            **(_NOTHING_RUNS if services is None else {
                "language_servers": [dataclasses.asdict(row) for row in services.lsp.status()],
                "diagnostics": _diagnostics(services),
                "repo_map": services.repomap.summary(),
                "decisions": services.decisions.summary(open_store),
            }),
            "upstreams": [dataclasses.asdict(row) for row in upstreams.status()] if upstreams is not None else [],
        }
    )  # fmt: skip


_NOTHING_RUNS: dict[str, Any] = {
    "language_servers": [], "upstreams": [], "diagnostics": {"total": 0, "files": {}, "messages": {}},
    "repo_map": {"indexed": False}, "decisions": {"open": False},
}  # fmt: skip


def _brief(server: LoomkinServer, project: Project) -> dict[str, Any]:
    services, _ = project.made()
    return {
        "root": str(project.root),
        "trusted": not project.workspace.trust.held_back(),
        "sessions": len(server.notifier.sessions(project.root)),
        "language_servers": [
            {"name": row.name, "state": row.state, "pid": row.pid} for row in services.lsp.status()
        ] if services is not None else [],
        "repo_map_files": services.repomap.summary()["files"] if services is not None else 0,
        "decision_nodes": services.decisions.node_count() if services is not None else None,
        "idle_s": round(project.idle_for(time.monotonic()), 1),
    }  # fmt: skip


def page_state(server: LoomkinServer) -> dict[str, Any]:
    """What the status page draws: the snapshot (less the clocks, so an unchanged state is not resent) and
    the decision graph laid out."""
    state = snapshot(server)
    del state["uptime_s"]
    for project in state["projects"]:
        del project["idle_s"]
    shown = server.projects.projects()[:1]
    services = shown[0].made()[0] if shown else None
    state["graph"] = services.decisions.picture() if services is not None else None
    return state


def _session(server: LoomkinServer, session: Any, since: float) -> dict[str, Any]:
    params = getattr(session, "client_params", None)
    info = getattr(params, "client_info", None)
    root = server.session_projects.root_of(client_of(session))
    return {
        "client": getattr(info, "name", None),
        "client_version": getattr(info, "version", None),
        "protocol_version": getattr(params, "protocol_version", None),
        "project": str(root) if root is not None else None,
        "since": round(since, 3),
    }


def _diagnostics(services: Services) -> dict[str, Any]:
    files, messages = services.lsp.diagnostic_summary(MESSAGES_PER_FILE)
    return {"total": sum(sum(counts.values()) for counts in files.values()), "files": files, "messages": messages}


def live_status(url: str, token: str | None, project: Path) -> tuple[dict[str, Any] | None, str]:
    """(`/status.json` of the daemon at `url` with `project` in full, or None and why not, as the end of a
    sentence)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        asked = f"{url}/status.json?{urllib.parse.urlencode({'project': str(project)})}"
        with urllib.request.urlopen(urllib.request.Request(asked, headers=headers), timeout=5) as got:
            data = json.loads(got.read(MAX_LIVE_STATUS_BYTES))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            return None, "asks for its token (set LOOMKIN_TOKEN to it)"
        return None, f"answered {exc.code}"
    except (OSError, ValueError):
        return None, "does not answer"
    return (data, "") if isinstance(data, dict) and "project" in data else (None, "answered something else")


def render_text(status: dict[str, Any]) -> str:
    """The snapshot for a terminal (`loomkin-mcp status`)."""
    project = status["project"]
    lines = [f"loomkin-mcp {status['version']}" + (f" for {project['root']}" if project else "")]
    if len(status.get("projects", [])) > 1 or project is None:
        lines.append(
            "Open projects:" if status.get("projects") else "Open projects: none yet (no client has opened one)"
        )
        for row in status.get("projects", []):
            servers = ", ".join(f"{server['name']} {server['state']}" for server in row["language_servers"]) or "none"
            trust = "trusted" if row["trusted"] else "restricted"
            lines.append(
                f"  {row['root']}: {trust}, {counted(row['sessions'], 'session')}, language servers: {servers}"
            )
    if project is None:
        return "\n".join(lines)
    rules = project["rules"]
    trust = "trusted" if project["trusted"] else f"{counted(len(project['held_back']), 'item')} held back until trusted"
    lines += [
        f"  config: {project['config'] or 'none (the defaults serve)'}",
        f"  trust: {trust}",
        f"  LOOMKIN.md: {rules['file'] or 'none'}, {counted(len(rules['rules']), 'rule')}, "
        f"shell: {', '.join(rules['shell_allowed']) or 'off'}",
        "Language servers:",
    ]
    for row in status["language_servers"] or [None]:
        lines.append("  none" if row is None else _row(row["name"], row["state"], row["pid"], row["last_error"]))
    lines.append("Upstream MCP servers:")
    for row in status["upstreams"] or [None]:
        lines.append("  none" if row is None else _row(row["name"], f"{row['state']}, {row['tools']} tools", None,
                                                      row["last_error"]))  # fmt: skip
    repo, decisions = status["repo_map"], status["decisions"]
    if repo["indexed"]:
        lines.append(f"Repo map: {repo['files']} files indexed")
    else:
        lines.append(f"Repo map: indexing, {repo['indexing']}" if repo.get("indexing") else "Repo map: not built yet")
    graph = f"{decisions['nodes']} nodes ({decisions['store']})" if decisions.get("open") else None
    lines.append("Decision graph: " + (graph or decisions.get("error") or "not opened yet"))
    return "\n".join(lines)


def _row(name: str, state: str, pid: int | None, error: str | None) -> str:
    return f"  {name}: {state}" + (f" (pid {pid})" if pid else "") + (f"; last error: {error}" if error else "")
