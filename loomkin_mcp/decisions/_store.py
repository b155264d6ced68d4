"""The decision store: SQLite (WAL) by default, PostgreSQL (psycopg 3) when DATABASE_URL says so.

Both run the same versioned migrations and the same SQL (written with `?`, turned into `%s`
for psycopg). Writes are short transactions; SQLite's waits for a lock (busy timeout, then a
few retries) never reach the client as "database is locked".
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from .._errors import ConfigError, LoomkinError
from ._schema import MAX_DESCRIPTION_CHARS, MAX_METADATA_CHARS, MAX_TITLE_CHARS, MIGRATIONS

T = TypeVar("T")

_NODE_COLUMNS = (
    "id, change_id, node_type, title, description, status, confidence, metadata, agent_name, session_id, "
    "inserted_at, updated_at"
)
_EDGE_COLUMNS = "id, from_node, to_node, edge_type, weight, rationale, change_id, inserted_at"
_INSERT_NODE = f"INSERT INTO decision_nodes ({_NODE_COLUMNS}, graph) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# What is read back is cut to the caps writes obey: a store written by something else may hold more.
_NODE_SELECT = (
    f"id, change_id, node_type, substr(title, 1, {MAX_TITLE_CHARS}), substr(description, 1, {MAX_DESCRIPTION_CHARS}), "
    f"status, confidence, CASE WHEN length(metadata) > {MAX_METADATA_CHARS} THEN '{{}}' ELSE metadata END, "
    "substr(agent_name, 1, 200), substr(session_id, 1, 200), inserted_at, updated_at"
)
_EDGE_SELECT = (
    f"id, from_node, to_node, edge_type, weight, substr(rationale, 1, {MAX_DESCRIPTION_CHARS}), change_id, inserted_at"
)
_LOCK_RETRIES = 20
# One SQLite statement may take this long; past it, it is interrupted (a planted store's slow view or trigger).
QUERY_SECONDS = 5.0


class StoreError(LoomkinError):
    """The decision store could not do what was asked."""


@dataclass(frozen=True)
class Node:
    id: str
    change_id: str
    node_type: str
    title: str
    description: str | None
    status: str
    confidence: int | None
    metadata: dict[str, Any]
    agent_name: str | None
    session_id: str | None
    inserted_at: str
    updated_at: str


@dataclass(frozen=True)
class Edge:
    id: str
    from_node: str
    to_node: str
    edge_type: str
    weight: float
    rationale: str | None
    change_id: str
    inserted_at: str


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
    return str(uuid.uuid4())


POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@dataclass
class DecisionStore:
    backend: str
    _connection: Any
    graph: str = ""
    """The graph every read and write is confined to: a PostgreSQL database holds many projects' graphs."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _deadline: float = float("inf")

    @classmethod
    def open(cls, state_file: Callable[[str], Path], database_url: str | None, graph: str = "") -> DecisionStore:
        """PostgreSQL for a `postgresql://` DATABASE_URL, else SQLite in the workspace's state dir.

        `state_file(name)` gives a checked path under the state dir (no planted link followed). `graph`
        names this project's graph in PostgreSQL; a SQLite file is the project's own and uses "".
        """
        if database_url and database_url.startswith(POSTGRES_SCHEMES):
            store = cls("postgresql", _connect_postgres(database_url), graph)
        else:
            path = state_file("decisions.db")
            for companion in ("-wal", "-shm", "-journal"):  # SQLite opens these beside it by name
                state_file(f"decisions.db{companion}")
            connection = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            store = cls("sqlite", connection)
            connection.set_progress_handler(store._over_time, 10_000)
            try:
                store._deadline = time.monotonic() + QUERY_SECONDS
                # No function a view or trigger names runs unless it is harmless; then the schema must be ours.
                connection.execute("PRAGMA trusted_schema=OFF")
                _require_own_schema(connection, path)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA busy_timeout=30000")
                connection.execute("PRAGMA foreign_keys=ON")
            except sqlite3.DatabaseError as exc:
                connection.close()
                raise StoreError(
                    f"{path} cannot be used as the decision store ({exc}); move it away and loomkin starts a new one."
                ) from None
            except StoreError:
                connection.close()
                raise
        store._migrate()
        return store

    def _over_time(self) -> int:
        """SQLite's progress handler: non-zero interrupts the statement running past its deadline."""
        return 1 if time.monotonic() > self._deadline else 0

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    # -- plumbing -------------------------------------------------------------------------

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.backend == "postgresql" else statement

    def _write(self, work: Callable[[Callable[..., Any]], T]) -> T:
        """Run `work(execute)` in one transaction, waiting out other writers."""
        for attempt in range(_LOCK_RETRIES):
            with self._lock:
                self._deadline = time.monotonic() + QUERY_SECONDS
                try:
                    if self.backend == "postgresql":
                        with self._connection.transaction():
                            return work(self._execute)
                    self._connection.execute("BEGIN IMMEDIATE")
                    try:
                        result = work(self._execute)
                    except BaseException:
                        self._connection.execute("ROLLBACK")
                        raise
                    self._connection.execute("COMMIT")
                    return result
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) and "busy" not in str(exc):
                        raise StoreError(f"the decision store failed: {exc}") from None
            time.sleep(0.05 * (attempt + 1))
        raise StoreError("the decision store stayed locked by another process; try again in a moment.")

    def _execute(self, statement: str, parameters: Iterable[Any] = ()) -> Any:
        self._deadline = time.monotonic() + QUERY_SECONDS
        cursor = self._connection.cursor()
        try:
            cursor.execute(self._sql(statement), tuple(parameters))
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise StoreError(
                    f"the decision store took over {QUERY_SECONDS:.0f} s on one query and it was stopped; if "
                    ".loomkin/decisions.db did not come from loomkin, move it away."
                ) from None
            raise
        return cursor

    def _read(self, statement: str, parameters: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._deadline = time.monotonic() + QUERY_SECONDS
            return list(self._execute(statement, parameters).fetchall())

    def _migrate(self) -> None:
        def migrate(execute: Callable[..., Any]) -> None:
            if self.backend == "postgresql":
                execute("SELECT pg_advisory_xact_lock(7411)")  # one migrator at a time
            execute("CREATE TABLE IF NOT EXISTS decision_schema (version INTEGER NOT NULL)")
            rows = execute("SELECT MAX(version) FROM decision_schema").fetchall()
            current = rows[0][0] or 0
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        execute(statement)
                    execute("INSERT INTO decision_schema (version) VALUES (?)", (version,))

        self._write(migrate)

    # -- nodes ----------------------------------------------------------------------------

    def add_node(
        self,
        node_type: str,
        title: str,
        description: str | None = None,
        confidence: int | None = None,
        metadata: dict[str, Any] | None = None,
        session_id: str | None = None,
        agent_name: str | None = None,
        link: tuple[str, str, str | None] | None = None,
    ) -> Node:
        """Insert a node (and, with `link` = (from_id, edge_type, rationale), its incoming edge)."""
        stamp = now()
        node = Node(
            new_id(), new_id(), node_type, title, description, "active", confidence, metadata or {},
            agent_name, session_id, stamp, stamp,
        )  # fmt: skip

        def insert(execute: Callable[..., Any]) -> None:
            execute(_INSERT_NODE, (*_node_row(node), self.graph))
            if link is not None:
                from_id, edge_type, rationale = link
                _insert_edge(execute, self.graph, from_id, node.id, edge_type, rationale, node.change_id)

        self._write(insert)
        return node

    def get(self, node_id: str) -> Node | None:
        rows = self._read(
            f"SELECT {_NODE_SELECT} FROM decision_nodes WHERE id = ? AND graph = ?", (node_id, self.graph)
        )
        return _node(rows[0]) if rows else None

    def find_active_goal(self, title: str) -> Node | None:
        rows = self._read(
            f"SELECT {_NODE_SELECT} FROM decision_nodes WHERE graph = ? AND node_type = 'goal' AND status = 'active' "
            "AND title = ? ORDER BY inserted_at LIMIT 1",
            (self.graph, title),
        )
        return _node(rows[0]) if rows else None

    def nodes(self, node_type: str | None = None, status: str | None = None, limit: int | None = None) -> list[Node]:
        clauses, parameters = ["graph = ?"], [self.graph]
        if node_type is not None:
            clauses.append("node_type = ?")
            parameters.append(node_type)
        if status is not None:
            clauses.append("status = ?")
            parameters.append(status)
        where = f" WHERE {' AND '.join(clauses)}"
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self._read(
            f"SELECT {_NODE_SELECT} FROM decision_nodes{where} ORDER BY inserted_at DESC{tail}", parameters
        )
        return [_node(row) for row in rows]

    def search(self, term: str, limit: int) -> list[Node]:
        # `%` and `_` in the term are the characters themselves, not LIKE's wildcards.
        escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        rows = self._read(
            f"SELECT {_NODE_SELECT} FROM decision_nodes WHERE graph = ? AND (LOWER(title) LIKE ? ESCAPE '\\' OR "
            f"LOWER(COALESCE(description, '')) LIKE ? ESCAPE '\\') ORDER BY inserted_at DESC LIMIT {int(limit)}",
            (self.graph, pattern, pattern),
        )
        return [_node(row) for row in rows]

    def update(
        self, node_id: str, status: str | None = None, confidence: int | None = None, description: str | None = None
    ) -> Node:
        def change(execute: Callable[..., Any]) -> None:
            sets, parameters = ["updated_at = ?", "change_id = ?"], [now(), new_id()]
            for column, value in (("status", status), ("confidence", confidence), ("description", description)):
                if value is not None:
                    sets.append(f"{column} = ?")
                    parameters.append(value)
            execute(f"UPDATE decision_nodes SET {', '.join(sets)} WHERE id = ? AND graph = ?",
                    (*parameters, node_id, self.graph))  # fmt: skip

        self._write(change)
        node = self.get(node_id)
        if node is None:
            raise StoreError(f"there is no node {node_id} in this project's graph.")
        return node

    def count(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM decision_nodes WHERE graph = ?", (self.graph,))[0][0])

    def version(self) -> tuple[Any, ...]:
        """Changes whenever this graph's nodes or edges do (by any process): cheap to ask every few ms."""
        nodes = self._read("SELECT COUNT(*), MAX(updated_at) FROM decision_nodes WHERE graph = ?", (self.graph,))[0]
        edges = self._read("SELECT COUNT(*) FROM decision_edges WHERE graph = ?", (self.graph,))[0]
        return (*nodes, *edges)

    def graphs(self) -> dict[str, int]:
        """Every graph in the store and its node count (doctor shows the others, and any from before graphs)."""
        rows = self._read("SELECT graph, COUNT(*) FROM decision_nodes GROUP BY graph")
        return {str(graph): int(count) for graph, count in rows}

    def logged_since(self, session_id: str, agent_name: str, since: str, node_types: tuple[str, ...]) -> bool:
        marks = ", ".join("?" for _ in node_types)
        rows = self._read(
            "SELECT 1 FROM decision_nodes WHERE graph = ? AND session_id = ? AND agent_name = ? AND inserted_at > ? "
            f"AND node_type IN ({marks}) LIMIT 1",
            (self.graph, session_id, agent_name, since, *node_types),
        )
        return bool(rows)

    # -- edges ----------------------------------------------------------------------------

    def add_edge(self, from_id: str, to_id: str, edge_type: str, rationale: str | None = None) -> Edge:
        return self._write(
            lambda execute: _insert_edge(execute, self.graph, from_id, to_id, edge_type, rationale, new_id())
        )

    def edges(self, node_ids: Iterable[str] | None = None) -> list[Edge]:
        if node_ids is None:
            rows = self._read(
                f"SELECT {_EDGE_SELECT} FROM decision_edges WHERE graph = ? ORDER BY inserted_at", (self.graph,)
            )
        else:
            ids = list(node_ids)
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
            rows = self._read(
                f"SELECT {_EDGE_SELECT} FROM decision_edges WHERE graph = ? AND "
                f"(from_node IN ({marks}) OR to_node IN ({marks})) ORDER BY inserted_at",
                (self.graph, *ids, *ids),
            )
        return [_edge(row) for row in rows]

    # -- commits --------------------------------------------------------------------------

    def knows_any(self, hashes: list[str]) -> bool:
        """Whether any of these commits was seen before in this graph (else they are a repository's history)."""
        if not hashes:
            return False
        marks = ", ".join("?" for _ in hashes)
        rows = self._read(
            f"SELECT 1 FROM decision_graph_commits WHERE graph = ? AND commit_hash IN ({marks}) LIMIT 1",
            (self.graph, *hashes),
        )
        return bool(rows)

    def claim_commits(self, hashes: list[str], node_for: Callable[[str], Node | None]) -> list[Node]:
        """Log commits nobody logged yet; the primary key makes a second claim (any process) a no-op."""
        logged: list[Node] = []
        for commit in hashes:

            def claim(execute: Callable[..., Any], commit: str = commit) -> Node | None:
                exists = execute(
                    "SELECT 1 FROM decision_graph_commits WHERE graph = ? AND commit_hash = ?", (self.graph, commit)
                ).fetchall()
                if exists:
                    return None
                node = node_for(commit)
                execute(
                    "INSERT INTO decision_graph_commits (graph, commit_hash, node_id, seen_at) VALUES (?, ?, ?, ?)",
                    (self.graph, commit, node.id if node else None, now()),
                )
                if node is not None:
                    execute(_INSERT_NODE, (*_node_row(node), self.graph))
                return node

            try:
                node = self._write(claim)
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - a unique-key race with another server: it logged it
                if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                    continue
                raise
            if node is not None:
                logged.append(node)
        return logged


def _require_own_schema(connection: sqlite3.Connection, path: Path) -> None:
    """A store of any other shape (a view, a trigger, a table of its own) is refused before anything reads it."""
    found = frozenset(connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall())
    if found and found not in _own_schemas():
        known = {(kind, name) for schema in _own_schemas() for kind, name, _, _ in schema}
        # What loomkin never makes first (a view, a trigger, a table of another name), then what it changed.
        unlike = sorted(found - set().union(*_own_schemas()), key=lambda row: ((row[0], row[1]) in known, row[1]))
        extra = [f"{kind} {name}" for kind, name, _, _ in unlike]
        what = f"it has {', '.join(extra[:3])}" if extra else "its tables are not shaped as loomkin's"
        raise StoreError(
            f"{path} is not a decision store loomkin made ({what}), so it is not opened; move it away and loomkin "
            "starts a new one."
        )


@functools.cache
def _own_schemas() -> tuple[frozenset[tuple[Any, ...]], ...]:
    """`sqlite_master` as each version of the migrations leaves it (an older store is still ours)."""
    schemas = []
    for last in range(len(MIGRATIONS) + 1):
        memory = sqlite3.connect(":memory:", isolation_level=None)
        memory.execute("CREATE TABLE IF NOT EXISTS decision_schema (version INTEGER NOT NULL)")
        for _, statements in MIGRATIONS[:last]:
            for statement in statements:
                memory.execute(statement)
        schemas.append(frozenset(memory.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()))
        memory.close()
    return tuple(schemas)


def _insert_edge(
    execute: Callable[..., Any],
    graph: str,
    from_id: str,
    to_id: str,
    edge_type: str,
    rationale: str | None,
    change_id: str,
) -> Edge:
    edge = Edge(new_id(), from_id, to_id, edge_type, 1.0, rationale, change_id, now())
    execute(
        f"INSERT INTO decision_edges ({_EDGE_COLUMNS}, graph) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (edge.id, edge.from_node, edge.to_node, edge.edge_type, edge.weight, edge.rationale, edge.change_id,
         edge.inserted_at, graph),
    )  # fmt: skip
    return edge


def _node_row(node: Node) -> tuple[Any, ...]:
    return (
        node.id, node.change_id, node.node_type, node.title, node.description, node.status, node.confidence,
        json.dumps(node.metadata), node.agent_name, node.session_id, node.inserted_at, node.updated_at,
    )  # fmt: skip


def _node(row: tuple[Any, ...]) -> Node:
    values = list(row)
    values[7] = json.loads(values[7] or "{}")
    return Node(*values)


def _edge(row: tuple[Any, ...]) -> Edge:
    return Edge(*row)


def _connect_postgres(url: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError(
            "DATABASE_URL names PostgreSQL but psycopg is not installed; pip install 'psycopg[binary]'."
        ) from None
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"DATABASE_URL: cannot connect to PostgreSQL ({reason}); check that it is running.") from None
