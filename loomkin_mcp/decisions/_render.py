"""The graph for people and models: query answers, the context within its budget, Mermaid / DOT / JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from ._store import Edge, Node

STALE_AFTER = timedelta(days=7)
LOW_CONFIDENCE = 50
CHARS_PER_TOKEN = 4  # Loomkin's estimate
# Goals first, then what follows from them, in the picture's layers.
PICTURE_ORDER = ("goal", "decision", "option", "action", "outcome")


def line(node: Node) -> str:
    confidence = f", confidence {node.confidence}" if node.confidence is not None else ""
    status = "" if node.status == "active" else f", {node.status}"
    return f"[{node.node_type}] {node.title} (id {node.id}{confidence}{status})"


def listing(nodes: list[Node], empty: str) -> str:
    return "\n".join(line(node) + (f"\n    {node.description}" if node.description else "") for node in nodes) or empty


def pulse(nodes: list[Node], edges: list[Edge]) -> str:
    """A health summary: counts, stale goals, decisions without outcomes, low confidence."""
    counts: dict[str, int] = defaultdict(int)
    for node in nodes:
        counts[node.node_type] += 1
    by_id = {node.id: node for node in nodes}
    outgoing: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        outgoing[edge.from_node].append(edge.to_node)
    cutoff = (datetime.now(UTC) - STALE_AFTER).isoformat()
    active_goals = [n for n in nodes if n.node_type == "goal" and n.status == "active"]
    stale = [g for g in active_goals if _latest_activity(g, outgoing, by_id) < cutoff]
    open_decisions = [
        n for n in nodes
        if n.node_type == "decision" and n.status == "active"
        and not any(by_id.get(child) and by_id[child].node_type in ("outcome", "action") for child in outgoing[n.id])
    ]  # fmt: skip
    low = [n for n in nodes if n.status == "active" and n.confidence is not None and n.confidence < LOW_CONFIDENCE]
    parts = [
        "Decision graph pulse: "
        + (", ".join(f"{counts[kind]} {kind}(s)" for kind in sorted(counts)) or "empty")
        + f"; {len(edges)} edge(s)."
    ]
    if stale:
        parts.append(f"Stale goals (no activity for {STALE_AFTER.days} days): " + "; ".join(line(g) for g in stale))
    if open_decisions:
        parts.append("Decisions without an action or outcome: " + "; ".join(line(d) for d in open_decisions[:10]))
    if low:
        parts.append(f"Low confidence (< {LOW_CONFIDENCE}): " + "; ".join(line(n) for n in low[:10]))
    if len(parts) == 1 and nodes:
        parts.append("Nothing needs attention.")
    return "\n".join(parts)


def _latest_activity(goal: Node, outgoing: dict[str, list[str]], by_id: dict[str, Node]) -> str:
    latest, seen, stack = goal.updated_at, {goal.id}, [goal.id]
    while stack:
        for child in outgoing[stack.pop()]:
            if child not in seen and child in by_id:
                seen.add(child)
                stack.append(child)
                latest = max(latest, by_id[child].updated_at)
    return latest


def context(nodes: list[Node], edges: list[Edge], max_tokens: int) -> str:
    """Active goals, then recent decisions with their chosen / rejected options and outcomes, within budget."""
    by_id = {node.id: node for node in nodes}
    outgoing: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges:
        outgoing[edge.from_node].append(edge)
    blocks = []
    goals = [n for n in nodes if n.node_type == "goal" and n.status == "active"]
    if goals:
        blocks.append("Active goals:\n" + "\n".join(f"- {g.title} (id {g.id})" for g in goals))
    for decision in [n for n in nodes if n.node_type == "decision" and n.status == "active"]:
        block = [f"Decision: {decision.title}" + (f" — {decision.description}" if decision.description else "")]
        for edge in outgoing[decision.id]:
            child = by_id.get(edge.to_node)
            if child is None:
                continue
            label = {"chosen": "chose", "rejected": "rejected"}.get(edge.edge_type, edge.edge_type.replace("_", " "))
            why = f" ({edge.rationale})" if edge.rationale else ""
            block.append(f"  {label}: [{child.node_type}] {child.title}{why}")
            for grandchild_edge in outgoing[child.id]:
                grandchild = by_id.get(grandchild_edge.to_node)
                if grandchild is not None and grandchild.node_type in ("outcome", "action"):
                    block.append(f"    → [{grandchild.node_type}] {grandchild.title}")
        blocks.append("\n".join(block))
    text = ""
    for block in blocks:  # newest decisions come first in `nodes`
        candidate = f"{text}\n\n{block}" if text else block
        if math.ceil(len(candidate) / CHARS_PER_TOKEN) > max_tokens:
            break
        text = candidate
    return text or "No decisions logged yet."


def mermaid(nodes: list[Node], edges: list[Edge]) -> str:
    ids = {node.id: f"n{index}" for index, node in enumerate(sorted(nodes, key=lambda n: n.inserted_at))}
    out = ["flowchart TD"]
    for node in sorted(nodes, key=lambda n: n.inserted_at):
        out.append(f'    {ids[node.id]}["{_label(node)}"]')
    for edge in edges:
        if edge.from_node in ids and edge.to_node in ids:
            out.append(f"    {ids[edge.from_node]} -->|{edge.edge_type}| {ids[edge.to_node]}")
    return "\n".join(out)


def dot(nodes: list[Node], edges: list[Edge]) -> str:
    out = ["digraph decisions {", "    rankdir=TB;"]
    for node in nodes:
        out.append(f'    "{node.id}" [label="{_label(node)}"];')
    for edge in edges:
        out.append(f'    "{edge.from_node}" -> "{edge.to_node}" [label="{edge.edge_type}"];')
    out.append("}")
    return "\n".join(out)


def as_json(nodes: list[Node], edges: list[Edge]) -> str:
    return json.dumps(
        {"nodes": [dataclasses.asdict(n) for n in nodes], "edges": [dataclasses.asdict(e) for e in edges]}, indent=2
    )


def _label(node: Node) -> str:
    title = node.title.replace('"', "'").replace("\n", " ")
    if len(title) > 60:
        title = title[:59] + "…"
    return f"{node.node_type}: {title}"


def picture(nodes: list[Node], edges: list[Edge], max_description: int = 600) -> dict[str, object]:
    """The graph laid out for the status page: layers by distance from the nodes nothing leads to (goals first).

    Linear in nodes and edges, so a thousand nodes lay out in milliseconds; positions are in layout units
    (a column per layer, a row per node in it), the page scales them.
    """
    ids = {node.id for node in nodes}
    shown = [edge for edge in edges if edge.from_node in ids and edge.to_node in ids]
    incoming: set[str] = {edge.to_node for edge in shown}
    outgoing: dict[str, list[str]] = defaultdict(list)
    for edge in shown:
        outgoing[edge.from_node].append(edge.to_node)
    order = {node_type: rank for rank, node_type in enumerate(("goal", "decision", "option", "action", "outcome"))}
    starts = sorted(
        (n for n in nodes if n.id not in incoming), key=lambda n: (order.get(n.node_type, 9), n.inserted_at)
    )
    layer: dict[str, int] = {}
    queue = [node.id for node in starts]
    for node_id in queue:
        layer.setdefault(node_id, 0)
    for node_id in queue:  # breadth first: the queue grows while it is walked
        for target in outgoing[node_id]:
            if target not in layer:
                layer[target] = layer[node_id] + 1
                queue.append(target)
    rows: dict[int, int] = defaultdict(int)
    placed = []
    for node in sorted(nodes, key=lambda n: (layer.get(n.id, 0), order.get(n.node_type, 9), n.inserted_at)):
        column = layer.get(node.id, 0)
        placed.append({
            "id": node.id, "type": node.node_type, "title": node.title, "status": node.status,
            "confidence": node.confidence, "description": (node.description or "")[:max_description],
            "commit": node.metadata.get("commit"), "x": column, "y": rows[column],
        })  # fmt: skip
        rows[column] += 1
    links = [{"from": edge.from_node, "to": edge.to_node, "type": edge.edge_type} for edge in shown]
    return {"nodes": placed, "edges": links}
