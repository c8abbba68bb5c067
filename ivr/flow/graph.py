"""A flow as a picture for review: nodes, keys on the edges, the routing outcomes (pure).

:func:`flow_graph` turns a validated :class:`~ivr.flow.model.Flow` into a small graph
value, including what the TOML only implies: the re-prompt limit that ends in the
``no_input`` route, a wrong PIN's retries, and any failure ending in ``unavailable``.
:func:`to_mermaid` and :func:`to_dot` write it as text; :mod:`ivr.flow.graph_svg` draws
it without external tools. Graph ids are generated, so node names need no escaping.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ivr.flow.actions import Reason
from ivr.flow.model import Flow
from ivr.flow.nodes import CallerLookupNode, CustomerNumberNode, MenuKey, MenuNode, Node, PinNode


class Kind(str, Enum):
    """What a graph node stands for; decides its shape and colour."""

    CALL = "call"
    FAILURE = "failure"
    MENU = "menu"
    LOOKUP = "caller_lookup"
    INPUT = "input"
    IDENTIFIED = "identified"
    NOT_IDENTIFIED = "not_identified"


@dataclass(frozen=True)
class GraphNode:
    id: str
    kind: Kind
    lines: tuple[str, ...]


@dataclass(frozen=True)
class GraphEdge:
    source: str
    target: str
    label: str
    implied: bool = False  # behaviour of the engine rather than a line of the flow file


@dataclass(frozen=True)
class FlowGraph:
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


def flow_graph(flow: Flow) -> FlowGraph:
    """The reviewable graph of ``flow``, with the engine's implied edges dashed."""
    ids = {name: f"n{i}" for i, name in enumerate(flow.nodes, start=2)}
    nodes = [
        GraphNode("n0", Kind.CALL, ("incoming call",)),
        GraphNode("n1", Kind.FAILURE, ("any failure", "Redis, PIN store, replay")),
    ]
    edges = [GraphEdge("n0", ids[flow.start], ""), GraphEdge("n1", ids[flow.unavailable], "")]
    tries = flow.max_reprompts + 1
    for name, node in flow.nodes.items():
        nodes.append(GraphNode(ids[name], _kind(node), (name, *_describe(flow, node))))
        for target, label, implied in _edges(flow, node, tries):
            edges.append(GraphEdge(ids[name], ids[target], label, implied))
    return FlowGraph(tuple(nodes), _merge(edges))


def _kind(node: Node) -> Kind:
    if isinstance(node, MenuNode):
        return Kind.MENU
    if isinstance(node, CallerLookupNode):
        return Kind.LOOKUP
    if isinstance(node, CustomerNumberNode | PinNode):
        return Kind.INPUT
    return Kind.IDENTIFIED if node.reason is Reason.VERIFIED else Kind.NOT_IDENTIFIED


def _describe(flow: Flow, node: Node) -> tuple[str, ...]:
    if isinstance(node, MenuNode):
        return ("menu, 1 key",)
    if isinstance(node, CallerLookupNode):
        return ("caller's number: one account?",)
    if isinstance(node, CustomerNumberNode):
        return (f"customer number: up to {node.max_digits} digits, then #",)
    if isinstance(node, PinNode):
        return (f"Service-PIN: {flow.pin_length} digits, # optional",)
    flag = "identified" if node.reason is Reason.VERIFIED else "not identified"
    return (f"agent, {flag}", f"reason {node.reason.value}")


def _edges(flow: Flow, node: Node, tries: int) -> list[tuple[str, str, bool]]:
    """(target, label, implied) of every way out of ``node``."""
    silence = (flow.no_input, f"no input / invalid x{tries}", True)
    if isinstance(node, MenuNode):
        out = [(key.goto, _key_label(node.name, digit, key), False)
               for digit, key in node.keys.items()]  # fmt: skip
        return [*out, silence]
    if isinstance(node, CallerLookupNode):
        return [(node.single, "one account", False), (node.other, "none, several, withheld", False)]
    if isinstance(node, CustomerNumberNode):
        return [(node.next, "digits #", False), silence]
    if isinstance(node, PinNode):
        attempts = flow.attempts_per_call
        out = [(node.verified, "PIN correct", False), (node.locked, "locked", False)]
        if attempts > 1:
            out.append((node.name, f"wrong: try again (up to {attempts})", True))
        return [*out, (node.failed, f"wrong x{attempts}", False), silence]
    return []


def _key_label(name: str, digit: str, key: MenuKey) -> str:
    # A switch both ways reads "de-DE→en-US / en-US→de-DE"; a plain one just "en-US".
    switches = " / ".join(f"{a}→{b}" if a else b for a, b in key.switches())
    if key.topic or switches:
        return f"{digit} {key.topic or switches}"
    return f"{digit} repeat" if key.goto == name else digit


def _merge(edges: list[GraphEdge]) -> tuple[GraphEdge, ...]:
    """One edge per (source, target, implied), labels joined: keys 1, 2, 3 -> one arrow."""
    merged: dict[tuple[str, str, bool], list[str]] = {}
    for edge in edges:
        merged.setdefault((edge.source, edge.target, edge.implied), []).append(edge.label)
    return tuple(
        GraphEdge(source, target, ", ".join(label for label in labels if label), implied)
        for (source, target, implied), labels in merged.items()
    )


# --- text formats ------------------------------------------------------------------------

_MERMAID_SHAPE = {
    Kind.CALL: ('(["', '"])'),
    Kind.FAILURE: ('>"', '"]'),
    Kind.MENU: ('{{"', '"}}'),
    Kind.LOOKUP: ('{"', '"}'),
    Kind.INPUT: ('[/"', '"/]'),
    Kind.IDENTIFIED: ('("', '")'),
    Kind.NOT_IDENTIFIED: ('("', '")'),
}
COLOURS = {
    Kind.IDENTIFIED: ("#d8f3dc", "#2d6a4f"),
    Kind.NOT_IDENTIFIED: ("#fde2e4", "#9d0208"),
    Kind.FAILURE: ("#fff3bf", "#8d6e00"),
}


def _mermaid_text(text: str) -> str:
    # Mermaid reads "#name;" as an entity, so "#" itself must be one too.
    return text.replace("#", "#35;").replace('"', "#quot;")


def to_mermaid(graph: FlowGraph) -> str:
    """A Mermaid flowchart (renders in GitHub Markdown inside a mermaid code block)."""
    lines = ["flowchart TD"]
    for node in graph.nodes:
        opening, closing = _MERMAID_SHAPE[node.kind]
        label = "<br/>".join(_mermaid_text(line) for line in node.lines)
        lines.append(f"    {node.id}{opening}{label}{closing}")
    for edge in graph.edges:
        arrow = "-.->" if edge.implied else "-->"
        label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
        lines.append(f"    {edge.source} {arrow}{label} {edge.target}")
    for kind, (fill, stroke) in COLOURS.items():
        members = [node.id for node in graph.nodes if node.kind is kind]
        if members:
            lines.append(f"    classDef {kind.value} fill:{fill},stroke:{stroke}")
            lines.append(f"    class {','.join(members)} {kind.value}")
    return "\n".join(lines) + "\n"


_DOT_SHAPE = {
    Kind.CALL: "oval",
    Kind.FAILURE: "note",
    Kind.MENU: "hexagon",
    Kind.LOOKUP: "diamond",
    Kind.INPUT: "parallelogram",
    Kind.IDENTIFIED: "box",
    Kind.NOT_IDENTIFIED: "box",
}


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(graph: FlowGraph) -> str:
    """A Graphviz digraph (``dot -Tpng``)."""
    lines = [
        "digraph flow {",
        '    node [fontname="Helvetica"];',
        '    edge [fontname="Helvetica"];',
    ]
    for node in graph.nodes:
        label = "\\n".join(_dot_text(line) for line in node.lines)
        attrs = [f'label="{label}"', f"shape={_DOT_SHAPE[node.kind]}"]
        if node.kind in COLOURS:
            fill, stroke = COLOURS[node.kind]
            attrs += ['style="rounded,filled"', f'fillcolor="{fill}"', f'color="{stroke}"']
        lines.append(f"    {node.id} [{', '.join(attrs)}];")
    for edge in graph.edges:
        attrs = [f'label="{_dot_text(edge.label)}"'] if edge.label else []
        if edge.implied:
            attrs.append("style=dashed")
        lines.append(
            f"    {edge.source} -> {edge.target}"
            + (f" [{', '.join(attrs)}]" if attrs else "")
            + ";"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
