"""The decision graph's vocabulary (as in Loomkin) and its versioned migrations for both databases."""

from __future__ import annotations

NODE_TYPES = ("goal", "decision", "option", "action", "outcome", "observation", "revisit")
EDGE_TYPES = (
    "leads_to",
    "chosen",
    "rejected",
    "requires",
    "blocks",
    "enables",
    "supersedes",
    "supports",
    "revises",
    "summarizes",
)
STATUSES = ("active", "superseded", "abandoned")

# A node is a line and a paragraph, read back in every query and in project_context: bounded on write, and on
# read too (a planted or older store may hold more), so five huge nodes cannot make each query return megabytes.
MAX_TITLE_CHARS = 300
MAX_DESCRIPTION_CHARS = 10_000
MAX_METADATA_CHARS = 64 * 1024

# (version, statements). Written once for both SQLite and PostgreSQL: TEXT ids and ISO timestamps.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE decision_nodes (
                id TEXT PRIMARY KEY,
                change_id TEXT NOT NULL,
                node_type TEXT NOT NULL,
                title TEXT NOT NULL,
                description TEXT,
                status TEXT NOT NULL DEFAULT 'active',
                confidence INTEGER,
                metadata TEXT NOT NULL DEFAULT '{}',
                agent_name TEXT,
                session_id TEXT,
                inserted_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            """CREATE TABLE decision_edges (
                id TEXT PRIMARY KEY,
                from_node TEXT NOT NULL REFERENCES decision_nodes(id),
                to_node TEXT NOT NULL REFERENCES decision_nodes(id),
                edge_type TEXT NOT NULL,
                weight DOUBLE PRECISION NOT NULL DEFAULT 1.0,
                rationale TEXT,
                change_id TEXT NOT NULL,
                inserted_at TEXT NOT NULL
            )""",
            # One row per commit ever seen: the unique key is what keeps a commit from being
            # logged twice, across restarts and across servers sharing the store.
            """CREATE TABLE decision_commits (
                commit_hash TEXT PRIMARY KEY,
                node_id TEXT,
                seen_at TEXT NOT NULL
            )""",
            "CREATE INDEX decision_nodes_type_status ON decision_nodes (node_type, status)",
            "CREATE INDEX decision_nodes_inserted ON decision_nodes (inserted_at)",
            "CREATE INDEX decision_edges_from ON decision_edges (from_node)",
            "CREATE INDEX decision_edges_to ON decision_edges (to_node)",
        ),
    ),
    (
        # One database, many projects: every row belongs to a graph (see DecisionStore.open). Rows from
        # before are in the graph '' (a SQLite store is one project's, and uses '' throughout).
        2,
        (
            "ALTER TABLE decision_nodes ADD COLUMN graph TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE decision_edges ADD COLUMN graph TEXT NOT NULL DEFAULT ''",
            """CREATE TABLE decision_graph_commits (
                graph TEXT NOT NULL,
                commit_hash TEXT NOT NULL,
                node_id TEXT,
                seen_at TEXT NOT NULL,
                PRIMARY KEY (graph, commit_hash)
            )""",
            "INSERT INTO decision_graph_commits SELECT '', commit_hash, node_id, seen_at FROM decision_commits",
            "DROP TABLE decision_commits",
            "CREATE INDEX decision_nodes_graph ON decision_nodes (graph, inserted_at)",
            "CREATE INDEX decision_edges_graph ON decision_edges (graph)",
        ),
    ),
)
