"""The decision graph for the tools: log, query, link, update, context, export, commits, pre-edit rule.

The store opens on first use (SQLite at `.loomkin/decisions.db`, or PostgreSQL when
DATABASE_URL is a `postgresql://` URL). A "session" is this server process: its decision and
action nodes carry its session id, which is what `enforce_pre_edit` looks for.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from .._errors import ConfigError, LoomkinError, PermissionRefused, ToolInputError
from ..git._service import run_git
from ..sandbox._service import Sandbox
from ..workspace import Workspace
from . import EDGE_TYPES, NODE_TYPES, STATUSES, DecisionStore, Node, render
from ._schema import MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS
from ._store import POSTGRES_SCHEMES, new_id, now
from ._summaries import Sampler, clean, from_endpoint, prompt_for

logger = logging.getLogger("loomkin_mcp.decisions")

QueryType = Literal["active_goals", "recent_decisions", "pulse", "search"]
ExportFormat = Literal["mermaid", "dot", "json"]
AGENT_NAME = "loomkin-mcp"
# Auto-logged commits carry their own agent name: they record what happened, they are not a logged why,
# so they never satisfy `enforce_pre_edit`.
COMMIT_AGENT_NAME = "loomkin-mcp auto_log_commits"
COMMITS_PER_SCAN = 200
# The status page draws at most this many nodes (the newest).
MAX_PICTURED_NODES = 1500
_SUMMARISE = "summarise it, and name files instead of pasting them"


class DecisionService:
    def __init__(self, workspace: Workspace, sandbox: Sandbox) -> None:
        self._ws = workspace
        self._sandbox = sandbox
        self._config = workspace.config.decisions
        self.session_id = str(uuid.uuid4())
        self.started_at = now()
        self._store: DecisionStore | None = None
        self._opening = threading.Lock()
        self._scanning = threading.Lock()
        self._picture: tuple[tuple[Any, ...], dict[str, object]] | None = None
        """The last picture for the status page, and the graph version it shows."""
        self.sampler: Sampler | None = None
        """Asks a connected client's model (MCP sampling); set by the server."""

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    @property
    def store(self) -> DecisionStore:
        if not self.enabled:
            raise ToolInputError("the decision graph is off (`[decisions] enabled = false` in .loomkin.toml).")
        with self._opening:
            if self._store is None:
                url = self._ws.settings.env.database_url
                value = url.get_secret_value() if url else None
                if value and not value.startswith(POSTGRES_SCHEMES):
                    scheme = value.split(":", 1)[0]
                    logger.warning(
                        "DATABASE_URL is a %s: URL, which the decision graph does not support (only PostgreSQL); "
                        "it uses SQLite in .loomkin/decisions.db instead.", scheme,
                    )  # fmt: skip
                    value = None
                graph = self.graph_id() if value else ""
                try:
                    self._store = DecisionStore.open(self._ws.state_file, value, graph)
                except ConfigError as exc:
                    raise ToolInputError(str(exc)) from None
            return self._store

    def node_count(self) -> int | None:
        """How many nodes the graph has; None while the store is closed (nothing is opened for it)."""
        if self._store is None:
            return None
        try:
            return self._store.count()
        except LoomkinError:
            return None

    def summary(self, open_store: bool = False) -> dict[str, object]:
        """For the status page: the store, its node count, active goals and recent decisions.

        The store is not opened for it unless `open_store` (a person's `loomkin-mcp status`).
        """
        if not self.enabled:
            return {"open": False, "error": "off: [decisions] enabled = false"}
        if self._store is None and not open_store:
            return {"open": False}
        try:
            store = self.store
            goals = [node.title for node in store.nodes("goal", "active", limit=10)]
            recent = [f"[{node.node_type}] {node.title}" for node in store.nodes(limit=10)]
            return {"open": True, "store": store.backend, "graph": store.graph, "nodes": store.count(),
                    "active_goals": goals, "recent": recent}  # fmt: skip
        except LoomkinError as exc:
            return {"open": False, "error": str(exc)}

    def picture(self, limit: int = MAX_PICTURED_NODES) -> dict[str, object] | None:
        """The newest `limit` nodes and their edges laid out for the status page; None while the store is closed."""
        if self._store is None:
            return None
        version = (self._store.version(), limit)
        if self._picture is None or self._picture[0] != version:
            nodes = self._store.nodes(limit=limit)
            self._picture = (version, render.picture(nodes, self._store.edges(node.id for node in nodes)))
        return self._picture[1]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- tools ----------------------------------------------------------------------------

    def log(
        self,
        node_type: str,
        title: str,
        description: str | None = None,
        confidence: int | None = None,
        parent_id: str | None = None,
        edge_type: str = "leads_to",
    ) -> str:
        _check(node_type, NODE_TYPES, "node_type")
        _check(edge_type, EDGE_TYPES, "edge_type")
        if not title.strip():
            raise ToolInputError("title is empty; say in a few words what this node is.")
        _check_size(title, "title", MAX_TITLE_CHARS, "say it in a few words and put the detail in description")
        _check_size(
            description, "description", MAX_DESCRIPTION_CHARS, "summarise it; link files instead of pasting them"
        )
        if confidence is not None and not 0 <= confidence <= 100:
            raise ToolInputError(f"confidence is {confidence}; give 0 to 100.")
        store = self.store
        if parent_id is not None and store.get(parent_id) is None:
            raise ToolInputError(f"parent_id {parent_id} is not a node; decision_query finds node ids.")
        if node_type == "goal" and (existing := store.find_active_goal(title.strip())) is not None:
            return f"Reused the active goal {render.line(existing)}: goals are not duplicated."
        node = store.add_node(
            node_type, title.strip(), description, confidence,
            session_id=self.session_id, agent_name=AGENT_NAME,
            link=(parent_id, edge_type, None) if parent_id else None,
        )  # fmt: skip
        linked = f", linked from {parent_id} ({edge_type})" if parent_id else ""
        return f"Logged {render.line(node)}{linked}."

    def query(self, query_type: str, search_term: str | None = None, limit: int = 10) -> str:
        _check(query_type, ("active_goals", "recent_decisions", "pulse", "search"), "query_type")
        if not 1 <= limit <= 500:
            raise ToolInputError(f"limit is {limit}; give 1 to 500.")
        self.scan_commits()
        store = self.store
        if query_type == "active_goals":
            return render.listing(store.nodes("goal", "active", limit), "No active goals.")
        if query_type == "recent_decisions":
            recent = [n for n in store.nodes(limit=limit * 4) if n.node_type in ("decision", "action", "outcome")]
            return render.listing(recent[:limit], "No decisions logged yet.")
        if query_type == "search":
            if not search_term or not search_term.strip():
                raise ToolInputError("query_type search needs search_term.")
            _check_size(search_term, "search_term", MAX_TITLE_CHARS, "search for a few words")
            return render.listing(store.search(search_term.strip(), limit), f"Nothing matches '{search_term}'.")
        nodes = store.nodes()
        return render.pulse(nodes, store.edges())

    def link(self, from_id: str, to_id: str, edge_type: str, rationale: str | None = None) -> str:
        _check(edge_type, EDGE_TYPES, "edge_type")
        store = self.store
        for name, node_id in (("from_id", from_id), ("to_id", to_id)):
            if store.get(node_id) is None:
                raise ToolInputError(f"{name} {node_id} is not a node; decision_query finds node ids.")
        if from_id == to_id:
            raise ToolInputError("from_id and to_id are the same node; link two different nodes.")
        _check_size(rationale, "rationale", MAX_DESCRIPTION_CHARS, "summarise it")
        edge = store.add_edge(from_id, to_id, edge_type, rationale)
        return f"Linked {from_id} -[{edge_type}]-> {to_id} (edge {edge.id})."

    def update(
        self, node_id: str, status: str | None = None, confidence: int | None = None, description: str | None = None
    ) -> str:
        if status is not None:
            _check(status, STATUSES, "status")
        if confidence is not None and not 0 <= confidence <= 100:
            raise ToolInputError(f"confidence is {confidence}; give 0 to 100.")
        if status is None and confidence is None and description is None:
            raise ToolInputError("nothing to change; give status, confidence or description.")
        _check_size(
            description, "description", MAX_DESCRIPTION_CHARS, "summarise it; link files instead of pasting them"
        )
        store = self.store
        if store.get(node_id) is None:
            raise ToolInputError(f"id {node_id} is not a node; decision_query finds node ids.")
        return f"Updated {render.line(store.update(node_id, status, confidence, description))}."

    def context_text(self, max_tokens: int | None = None) -> str:
        budget = max_tokens if max_tokens is not None else self._ws.config.context.max_decision_context_tokens
        store = self.store
        return render.context(store.nodes(), store.edges(), budget)

    def export(self, export_format: str) -> str:
        _check(export_format, ("mermaid", "dot", "json"), "format")
        store = self.store
        nodes, edges = store.nodes(), store.edges()
        return {"mermaid": render.mermaid, "dot": render.dot, "json": render.as_json}[export_format](nodes, edges)

    # -- enforce_pre_edit -----------------------------------------------------------------

    def require_why(self, tool: str) -> None:
        """With `enforce_pre_edit`, refuse an edit until a decision or action was logged since the last commit."""
        if not (self.enabled and self._config.enforce_pre_edit):
            return
        self.scan_commits()
        last_commit = self._last_commit_time()
        since = max(self.started_at, last_commit) if last_commit else self.started_at
        if self.store.logged_since(self.session_id, AGENT_NAME, since, ("decision", "action")):
            return
        point = "the last commit" if last_commit and last_commit > self.started_at else "this session started"
        raise PermissionRefused(
            f"{tool} is refused by `[decisions] enforce_pre_edit`: log why first — decision_log a decision or an "
            f"action for this change (nothing was logged since {point}), then retry."
        )

    def _last_commit_time(self) -> str | None:
        output = self._git("log", "-1", "--format=%cI")
        if not output:
            return None
        return datetime.fromisoformat(output.strip()).astimezone(UTC).isoformat(timespec="microseconds")

    # -- auto_log_commits -----------------------------------------------------------------

    def scan_commits(self) -> list[Node]:
        """Log commits made since the last scan (by anyone) as action nodes, once each."""
        if not (self.enabled and self._config.auto_log_commits):
            return []
        with self._scanning:
            output = self._git("log", "--all", f"--max-count={COMMITS_PER_SCAN}", "--format=%H%x1f%an <%ae>%x1f%s")
            if output is None:
                return []
            commits = [line.split("\x1f") for line in output.splitlines() if line.count("\x1f") == 2]
            store = self.store
            if not store.knows_any([commit for commit, _, _ in commits]):
                # The first scan of a repository (in this graph, which others may share): its commits are history.
                store.claim_commits([commit for commit, _, _ in commits], lambda commit: None)
                return []
            details = {commit: (author, subject) for commit, author, subject in commits}
            goals = store.nodes("goal", "active")
            logged = store.claim_commits(
                [commit for commit, _, _ in reversed(commits)],
                lambda commit: self._commit_node(commit, *details[commit]),
            )
            for node in logged:
                if len(goals) == 1:
                    store.add_edge(goals[0].id, node.id, "leads_to", "auto-logged commit")
                logger.info("logged commit %s as decision action %s", node.metadata["commit"][:10], node.id)
                if summary := self._summarize(node):
                    store.update(node.id, description=f"Summary: {summary}. {node.description or ''}".strip())
            return logged

    def _summarize(self, node: Node) -> str | None:
        """A one-line summary from the weak model: the client's (sampling) first, then an endpoint."""
        prompt = prompt_for(node.metadata["message"], node.metadata["files"])
        weak = self._ws.config.model.weak
        if self.sampler is not None:
            import anyio.from_thread

            try:
                summary = anyio.from_thread.run(self.sampler, prompt, weak)
            except Exception:  # noqa: BLE001 - not on a worker thread, or the client failed: try the endpoint
                summary = None
            if summary := clean(summary):
                return summary
        return from_endpoint(self._ws.config, prompt)

    def _commit_node(self, commit: str, author: str, subject: str) -> Node:
        files = (self._git("show", "--name-only", "--format=", commit) or "").split()
        stamp = now()
        return Node(
            new_id(), new_id(), "action", f"Commit {commit[:10]}: {subject}",
            "Changed: " + ", ".join(files[:50]) if files else None, "active", None,
            {"commit": commit, "message": subject, "author": author, "files": files},
            COMMIT_AGENT_NAME, self.session_id, stamp, stamp,
        )  # fmt: skip

    def graph_id(self) -> str:
        """This project's graph in a shared PostgreSQL store: `[decisions] graph`, else the project's identity.

        The identity is the repository's first commit (the same in every clone, wherever it lives), or the
        root's path for a directory with no history yet.
        """
        named = self._ws.config.decisions.graph
        if named is not None:
            return named
        roots = (self._git("rev-list", "--max-parents=0", "HEAD") or "").split()
        return f"git:{min(roots)}" if roots else f"path:{self._ws.root}"

    def _git(self, *args: str) -> str | None:
        try:
            done = run_git(self._ws, list(args), 10, self._sandbox)
        except (OSError, subprocess.TimeoutExpired, ToolInputError):
            return None
        return done.stdout.decode("utf-8", errors="replace") if done.returncode == 0 else None


def _check_size(value: str | None, what: str, limit: int, advice: str) -> None:
    if value is not None and len(value) > limit:
        raise ToolInputError(f"{what} is {len(value)} characters; at most {limit} are kept, so {advice}.")


def _check(value: str, valid: tuple[str, ...], what: str) -> None:
    if value not in valid:
        raise ToolInputError(f"{what} '{value}' is not valid; use one of: {', '.join(valid)}.")
