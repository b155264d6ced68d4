"""The code's shape: one concept, one package, and no package importing another that imports it back.

Read from the source (every import, lazy ones included; those under TYPE_CHECKING are types only and do not count).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "loomkin_mcp"
# What sits at the top of the package besides the domain packages: shared primitives and the entry points.
TOP_LEVEL_MODULES = {
    "__init__", "__main__", "_confine", "_errors", "_fs", "_lazy", "_limits", "_logging", "_redact", "_version",
    "providers",
}  # fmt: skip


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            inside.update(id(sub) for sub in ast.walk(node))
    return inside


def import_graph() -> dict[str, set[str]]:
    """Top-level unit (package or module of loomkin_mcp) -> the units it imports at run time."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        package = parts[:-1]
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = _type_checking_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or id(node) in typing_only:
                continue
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
            if not target.startswith("loomkin_mcp"):
                continue
            names = [f"{target}.{alias.name}" for alias in node.names] if "." not in target else [target]
            for name in names:
                if _unit(name) != _unit(module):
                    graph[_unit(module)].add(_unit(name))
    return graph


def test_no_package_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    cycles = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for following in sorted(graph.get(node, ())):
            if following == start:
                cycles.append(" -> ".join([*path, following]))
            elif following not in path and following > start:
                walk(start, following, [*path, following])

    for unit in sorted(graph):
        walk(unit, unit, [unit])
    assert not cycles, cycles
    # The direction the data flows: nothing below the server reaches up to it, its transports or the CLI.
    for low in ("config", "workspace", "files", "search", "shell", "git", "lsp", "repomap", "project", "server"):
        assert not graph[low] & {"server", "transports", "cli"} - {low}, (low, graph[low])


def test_the_top_of_the_package_holds_only_primitives_and_packages() -> None:
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == TOP_LEVEL_MODULES, modules - TOP_LEVEL_MODULES
    # A reader finds each tool in its domain's package.
    for domain in ("files", "search", "shell", "git", "lsp", "repomap", "symbols", "decisions", "upstream"):
        assert (PACKAGE / domain / "_tools.py").is_file(), domain


def test_the_server_never_replaces_itself() -> None:
    # The client's roots pick the project inside one process: no exec of a rooted copy, no replayed handshake.
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "os.exec" not in text and "execv" not in text, path


def test_each_tool_domain_registers_exactly_the_names_it_lists() -> None:
    """The server registers a domain's tools when a request first needs them (a call, only its own domain's), by
    the table that names them: the table must say what each domain really registers."""
    from mcp.server.mcpserver import MCPServer

    from loomkin_mcp.server._server import TOOL_DOMAINS

    listed = [name for domain in TOOL_DOMAINS for name in domain.names]
    assert len(listed) == len(set(listed))
    for domain in TOOL_DOMAINS:
        server = MCPServer("layout")
        domain.register(server, lambda: None)  # type: ignore[arg-type,return-value]
        tools = [tool.name for tool in server._tool_manager.list_tools()]
        prompts = [prompt.name for prompt in server._prompt_manager.list_prompts()]
        assert tools == [name for name in domain.names if name in tools] and set(tools) | set(prompts) == set(
            domain.names
        ), (domain.module, tools, prompts)


def test_the_saved_tool_list_is_what_registration_gives() -> None:
    """`tools/list` answers from the list saved with the code until every domain is built: it must be that list.
    After changing a tool: `python -m loomkin_mcp.server._tool_list`."""
    import json

    import anyio

    from loomkin_mcp.server._tool_list import SAVED, built_tools

    assert json.loads(SAVED.read_text(encoding="utf-8")) == anyio.run(built_tools), (
        "the saved tool list is stale: run `python -m loomkin_mcp.server._tool_list`"
    )
