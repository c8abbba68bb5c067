"""Flow pictures: every node, the keys on the edges, and each route's outcome."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ivr.config import PACKAGE_ROOT
from ivr.flow.graph import FlowGraph, Kind, flow_graph, to_dot, to_mermaid
from ivr.flow.graph_svg import layers, to_svg
from ivr.flow.model import Flow, load_flow, parse_flow

DEFAULT_FLOW = PACKAGE_ROOT / "flows" / "service_pin.toml"


@pytest.fixture
def flow() -> Flow:
    """The default flow with a 6-digit PIN and 3 attempts per call."""
    return load_flow(DEFAULT_FLOW, pin_length=6, attempts_per_call=3)


def labels(graph: FlowGraph) -> dict[tuple[str, str], str]:
    names = {n.id: n.lines[0] for n in graph.nodes}
    return {(names[e.source], names[e.target]): e.label for e in graph.edges}


def test_graph_has_every_node_and_the_keys_on_edges(flow: Flow) -> None:
    """Each flow node is drawn once; menu keys, lookups and PIN verdicts label the edges."""
    graph = flow_graph(flow)
    names = [n.lines[0] for n in graph.nodes]
    assert sorted(set(flow.nodes)) == sorted(n for n in names if n in flow.nodes)
    edges = labels(graph)
    assert edges[("menu", "account")] == "1 payments, 2 contract, 3 cancellation"
    assert edges[("menu", "not_required")] == "0 other"
    assert edges[("menu", "menu")] == "9 de-DE→en-US / en-US→de-DE, * repeat"
    assert edges[("account", "pin")] == "one account"
    assert edges[("pin", "verified")] == "PIN correct"
    assert edges[("pin", "wrong_pin")] == "wrong x3"
    assert edges[("menu", "no_input")] == "no input / invalid x3"
    assert edges[("incoming call", "menu")] == "" and ("any failure", "unavailable") in edges


def test_only_the_verified_route_is_identified(flow: Flow) -> None:
    """The routing outcomes are explicit: one identified route, the rest not identified."""
    graph = flow_graph(flow)
    identified = [n.lines[0] for n in graph.nodes if n.kind is Kind.IDENTIFIED]
    assert identified == ["verified"]
    routes = [n for n in graph.nodes if n.kind is Kind.NOT_IDENTIFIED]
    assert {n.lines[0] for n in routes} == {
        "wrong_pin", "locked", "not_required", "no_input", "unavailable"
    }  # fmt: skip
    assert all(n.lines[1] == "agent, not identified" for n in routes)


def test_mermaid_text(flow: Flow) -> None:
    """Mermaid output is a flowchart with quoted labels, dashed implied edges and classes."""
    text = to_mermaid(flow_graph(flow))
    assert text.startswith("flowchart TD\n")
    assert '-->|"1 payments, 2 contract, 3 cancellation"|' in text
    assert '-.->|"no input / invalid x3"|' in text
    assert "classDef identified" in text and "class n" in text
    # '#' is an entity start in Mermaid: it must only appear as an entity itself.
    assert re.search(r"#(?!35;|quot;)", text.split("classDef")[0]) is None


def test_labels_are_escaped() -> None:
    """Quotes in topics cannot break the Mermaid or DOT syntax."""
    data = tomllib.loads(DEFAULT_FLOW.read_text(encoding="utf-8"))
    data["nodes"]["menu"]["keys"]["1"]["topic"] = 'say "hi" \\ bye'
    flow = parse_flow(data, source="x.toml", pin_length=6, attempts_per_call=3)
    graph = flow_graph(flow)
    assert "say #quot;hi#quot;" in to_mermaid(graph)
    assert 'say \\"hi\\" \\\\ bye' in to_dot(graph)


def test_dot_text(flow: Flow) -> None:
    """DOT output declares every node and edge, dashed where the engine implies them."""
    graph = flow_graph(flow)
    text = to_dot(graph)
    assert text.startswith("digraph flow {") and text.rstrip().endswith("}")
    assert len(re.findall(r"^    n\d+ \[label=", text, re.M)) == len(graph.nodes)
    assert len(re.findall(r"^    n\d+ -> n\d+", text, re.M)) == len(graph.edges)
    assert "style=dashed" in text


def test_svg_is_valid_and_routes_are_at_the_bottom(flow: Flow) -> None:
    """The SVG parses as XML, names every node, and puts all routes on the last layer."""
    graph = flow_graph(flow)
    root = ET.fromstring(to_svg(graph))
    assert root.tag.endswith("svg")
    texts = {el.text for el in root.iter() if el.tag.endswith("text")}
    assert set(flow.nodes) <= texts
    layer = layers(graph)
    bottom = max(layer.values())
    routes = [n.id for n in graph.nodes if n.kind in (Kind.IDENTIFIED, Kind.NOT_IDENTIFIED)]
    assert {layer[r] for r in routes} == {bottom}
    by_name = {n.lines[0]: layer[n.id] for n in graph.nodes}
    assert by_name["menu"] < by_name["account"] < by_name["customer_number"] < by_name["pin"]


def test_svg_of_a_flow_with_a_loop_back(tmp_path: Path) -> None:
    """An edge back up the flow (customer number to the menu) is drawn, not lost."""
    data = tomllib.loads(DEFAULT_FLOW.read_text(encoding="utf-8"))
    data["nodes"]["customer_number"]["next"] = "menu"
    data["nodes"]["account"]["other"] = "customer_number"
    flow = parse_flow(data, source="x.toml", pin_length=6, attempts_per_call=1)
    svg = to_svg(flow_graph(flow))
    assert ET.fromstring(svg) is not None and "digits #" in svg
    assert "try again" not in svg  # one attempt per call: no retry edge
