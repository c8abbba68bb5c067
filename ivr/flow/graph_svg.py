"""Draw a :class:`~ivr.flow.graph.FlowGraph` as SVG with no external tools (pure).

A small layered ("Sugiyama") layout is enough for call flows of a few dozen nodes:
longest-path layers from the incoming call, all routes to agents on the bottom layer,
dummy points for edges that skip layers, a few barycenter sweeps to reduce crossings.
Edges back up the flow (the menu's repeat, a wrong PIN's retry) curve round the side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from ivr.flow.graph import COLOURS, FlowGraph, GraphEdge, Kind

CHAR_W, LINE_H, PAD_X, PAD_Y = 7.0, 16.0, 12.0, 8.0
GAP_X, GAP_Y, MARGIN, SIDE = 36.0, 84.0, 24.0, 160.0
SWEEPS = 4
ROUTES = (Kind.IDENTIFIED, Kind.NOT_IDENTIFIED)


@dataclass
class _Box:
    x: float = 0.0  # centre
    y: float = 0.0  # top
    w: float = 12.0
    h: float = 0.0

    @property
    def bottom(self) -> float:
        return self.y + self.h


def layers(graph: FlowGraph) -> dict[str, int]:
    """Layer of every node: longest path from the roots, routes at the bottom."""
    kinds = {n.id: n.kind for n in graph.nodes}
    forward = _forward_edges(graph)
    layer = {n.id: 0 for n in graph.nodes}
    for _ in graph.nodes:  # relax until stable; forward edges form a DAG
        changed = False
        for e in forward:
            if layer[e.target] < layer[e.source] + 1:
                layer[e.target], changed = layer[e.source] + 1, True
        if not changed:
            break
    inner = [
        layer[i] for i, kind in kinds.items() if kind not in ROUTES and kind is not Kind.FAILURE
    ]
    bottom = max(inner, default=0) + 1
    for node_id, kind in kinds.items():
        if kind in ROUTES:
            layer[node_id] = bottom
        elif kind is Kind.FAILURE:
            layer[node_id] = bottom - 1
    return layer


def _forward_edges(graph: FlowGraph) -> list[GraphEdge]:
    """Edges without self-loops and without edges back into the DFS path (cycles)."""
    out: dict[str, list[GraphEdge]] = {}
    for e in graph.edges:
        out.setdefault(e.source, []).append(e)
    kept: list[GraphEdge] = []
    done: set[str] = set()
    path: set[str] = set()

    def visit(node: str) -> None:
        path.add(node)
        for e in out.get(node, []):
            if e.target in path:
                continue  # back edge: drawn round the side
            kept.append(e)
            if e.target not in done:
                visit(e.target)
        path.discard(node)
        done.add(node)

    for n in graph.nodes:
        if n.id not in done:
            visit(n.id)
    return kept


def to_svg(graph: FlowGraph) -> str:
    """The graph as a standalone SVG document."""
    layer = layers(graph)
    rows: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for n in graph.nodes:
        rows[layer[n.id]].append(n.id)
    chains: dict[int, list[str]] = {}  # edge index -> dummy ids, one per skipped layer
    for i, e in enumerate(graph.edges):
        if layer[e.target] > layer[e.source] + 1:
            chains[i] = [f"d{i}_{k}" for k in range(layer[e.source] + 1, layer[e.target])]
            for k, dummy in zip(
                range(layer[e.source] + 1, layer[e.target]), chains[i], strict=True
            ):
                rows[k].append(dummy)
    links = _links(graph, layer, chains)
    _sweep(rows, links)
    boxes = _place(graph, rows)
    return _draw(graph, layer, chains, boxes)


def _links(
    graph: FlowGraph, layer: dict[str, int], chains: dict[int, list[str]]
) -> list[tuple[str, str]]:
    """Pairs (upper, lower) on adjacent layers: the forward edges cut at the dummies."""
    pairs: list[tuple[str, str]] = []
    for i, e in enumerate(graph.edges):
        if layer[e.target] > layer[e.source]:
            points = [e.source, *chains.get(i, []), e.target]
            pairs += list(zip(points, points[1:], strict=False))
    return pairs


def _sweep(rows: list[list[str]], links: list[tuple[str, str]]) -> None:
    """Reorder each layer by the mean position of its neighbours, down and up again."""
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        order = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
        for k in order:
            ref = {node: i for i, node in enumerate(rows[k - 1 if downward else k + 1])}
            near = {node: [ref[a if downward else b] for a, b in links
                           if (b if downward else a) == node and (a if downward else b) in ref]
                    for node in rows[k]}  # fmt: skip
            position = {node: i for i, node in enumerate(rows[k])}
            rows[k].sort(key=lambda n: sum(near[n]) / len(near[n]) if near[n] else position[n])


def _place(graph: FlowGraph, rows: list[list[str]]) -> dict[str, _Box]:
    boxes: dict[str, _Box] = {}
    for n in graph.nodes:
        width = max(len(line) for line in n.lines) * CHAR_W + 2 * PAD_X
        boxes[n.id] = _Box(w=width, h=len(n.lines) * LINE_H + 2 * PAD_Y)
    widths = [sum(_box(boxes, n).w for n in row) + GAP_X * (len(row) - 1) for row in rows]
    total = max(widths, default=0.0)
    y = MARGIN
    for row, width in zip(rows, widths, strict=True):
        x = MARGIN + (total - width) / 2
        height = max((_box(boxes, n).h for n in row), default=0.0)
        for node in row:
            box = boxes.setdefault(node, _Box())
            box.x, box.y = x + box.w / 2, y + (height - box.h) / 2
            x += box.w + GAP_X
        y += height + GAP_Y
    return boxes


def _box(boxes: dict[str, _Box], node: str) -> _Box:
    return boxes.get(node) or _Box()


def _draw(
    graph: FlowGraph, layer: dict[str, int], chains: dict[int, list[str]], boxes: dict[str, _Box]
) -> str:
    width = max(b.x + b.w / 2 for b in boxes.values()) + MARGIN + SIDE
    height = max(b.bottom for b in boxes.values()) + MARGIN
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="12">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#444"/></marker></defs>',
        '<rect width="100%" height="100%" fill="white"/>',
    ]
    fanned: dict[str, int] = {}
    for i, e in enumerate(graph.edges):
        # Labels of edges leaving one node sit at alternating heights so they do not overlap.
        nth = fanned[e.source] = fanned.get(e.source, -1) + 1
        out += _edge(e, layer, chains.get(i, []), boxes, 0.3 + 0.4 * (nth % 2))
    for n in graph.nodes:
        b = boxes[n.id]
        fill, stroke = COLOURS.get(n.kind, ("#e7f0fb", "#1d4e89"))
        radius = 18 if n.kind in (Kind.CALL, *ROUTES) else 4
        out.append(
            f'<rect x="{b.x - b.w / 2:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" '
            f'rx="{radius}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
        )
        for k, line in enumerate(n.lines):
            weight = ' font-weight="bold"' if k == 0 else ""
            ty = b.y + PAD_Y + LINE_H * (k + 0.75)
            out.append(
                f'<text x="{b.x:.1f}" y="{ty:.1f}" text-anchor="middle"{weight}>'
                f"{escape(line)}</text>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _edge(
    e: GraphEdge, layer: dict[str, int], dummies: list[str], boxes: dict[str, _Box], at: float
) -> list[str]:
    s, t = boxes[e.source], boxes[e.target]
    dash = ' stroke-dasharray="5,4"' if e.implied else ""
    style = f'fill="none" stroke="#444" stroke-width="1.2"{dash} marker-end="url(#arrow)"'
    if e.source == e.target:  # a loop on the right-hand side
        x, y = s.x + s.w / 2, s.y + s.h / 2
        path = (
            f"M{x:.1f},{y - 6:.1f} C{x + 46:.1f},{y - 30:.1f} "
            f"{x + 46:.1f},{y + 30:.1f} {x:.1f},{y + 6:.1f}"
        )
        return [f'<path d="{path}" {style}/>', *_label(e.label, x + 40, y, "start")]
    if layer[e.target] <= layer[e.source]:  # back up the flow: round the right-hand side
        x1, y1, x2, y2 = s.x + s.w / 2, s.y + s.h / 2, t.x + t.w / 2, t.y + t.h / 2
        bend = max(x1, x2) + 70
        path = f"M{x1:.1f},{y1:.1f} C{bend:.1f},{y1:.1f} {bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        return [f'<path d="{path}" {style}/>', *_label(e.label, bend - 14, (y1 + y2) / 2, "start")]
    points = [(s.x, s.bottom), *((boxes[d].x, boxes[d].y) for d in dummies), (t.x, t.y)]
    path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
    (x1, y1), (x2, y2) = points[0], points[1]
    lx, ly = x1 + (x2 - x1) * at, y1 + (y2 - y1) * at
    return [f'<path d="{path}" {style}/>', *_label(e.label, lx, ly, "middle")]


def _label(text: str, x: float, y: float, anchor: str) -> Iterable[str]:
    if not text:
        return []
    w = len(text) * CHAR_W * 0.9 + 6
    left = x - w / 2 if anchor == "middle" else x - 3
    return [
        f'<rect x="{left:.1f}" y="{y - 9:.1f}" width="{w:.1f}" height="15" fill="white" '
        'opacity="0.85"/>',
        f'<text x="{x:.1f}" y="{y + 2:.1f}" text-anchor="{anchor}" font-size="11" '
        f'fill="#333">{escape(text)}</text>',
    ]
