"""Cross-reference checks of a flow: edges, roots, languages, prompt keys, reachability.

Each ``check_*`` function appends its problems (without the file name) to ``out`` instead
of raising; :func:`ivr.flow.model.parse_flow` collects them all. They take the raw
``[nodes]`` table alongside the parsed nodes so that an edge into a node that failed to
parse is not reported twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any

from ivr.flow.actions import Reason
from ivr.flow.nodes import CustomerNumberNode, MenuNode, Node, PinNode, RouteNode

_EDGE_FIELDS = ("single", "other", "next", "verified", "failed", "locked")


def edges(raw: Any) -> Iterator[tuple[str, str]]:
    """(label, target) of every transition written in a raw node table."""
    if not isinstance(raw, Mapping):
        return
    for field in _EDGE_FIELDS:
        if isinstance(raw.get(field), str):
            yield field, raw[field]
    keys = raw.get("keys")
    if isinstance(keys, Mapping):
        for digit, spec in keys.items():
            if isinstance(spec, Mapping) and isinstance(spec.get("goto"), str):
                yield f"key '{digit}'", spec["goto"]


def check_roots(
    names: Mapping[str, str | None],
    raw_nodes: Mapping[str, Any],
    nodes: Mapping[str, Node],
    out: list[str],
) -> None:
    """Check the ``[flow]`` roots: each names a node; all but ``start`` name route nodes.

    ``names`` maps ``start``, ``unavailable`` and ``no_input`` to their node (None when
    missing, which was reported already); the ``unavailable`` route must have reason
    ``unavailable``.
    """
    for key, target in names.items():
        if target is None:
            continue
        if target not in raw_nodes:
            out.append(f"[flow] {key} names unknown node '{target}'")
        elif key != "start" and target in nodes and not isinstance(nodes[target], RouteNode):
            out.append(f"[flow] {key} node '{target}' must be a route node")
    node = nodes.get(names["unavailable"] or "")
    if isinstance(node, RouteNode) and node.reason is not Reason.UNAVAILABLE:
        out.append(f"[flow] unavailable node '{node.name}' must have reason 'unavailable'")


def check_edge(
    name: str,
    label: str,
    target: str,
    raw_nodes: Mapping[str, Any],
    nodes: Mapping[str, Node],
    out: list[str],
) -> None:
    """Check one transition ``label`` of node ``name`` to ``target``.

    The target must exist; a pin node may only go to route nodes, its ``verified`` only
    to a route with reason ``verified``, and no other transition may go to such a route.
    """
    source, node = nodes.get(name), nodes.get(target)
    at = f"node '{name}' {label}"
    if target not in raw_nodes:
        out.append(f"{at} goes to unknown node '{target}'")
    elif source is None or node is None:
        return  # a broken node was reported already
    elif isinstance(source, PinNode) and not isinstance(node, RouteNode):
        out.append(f"{at} goes to '{target}', which is not a route node")
    elif isinstance(source, PinNode) and label == "verified":
        if isinstance(node, RouteNode) and node.reason is not Reason.VERIFIED:
            out.append(f"{at} goes to route '{target}', whose reason is not 'verified'")
    elif isinstance(node, RouteNode) and node.reason is Reason.VERIFIED:
        out.append(f"{at} goes to verified route '{target}'; only a pin node's verified may")


def check_languages(nodes: Mapping[str, Node], languages: list[str], out: list[str]) -> None:
    """Check that every menu key switching language switches from and to declared ones."""
    if not languages:
        return  # reported already
    for node in nodes.values():
        if not isinstance(node, MenuNode):
            continue
        for digit, key in node.keys.items():
            at = f"node '{node.name}' key '{digit}' switches"
            for source, target in key.switches():
                if source is not None and source not in languages:
                    out.append(f"{at} from undeclared language '{source}'")
                if target not in languages:
                    out.append(f"{at} to undeclared language '{target}'")


def prompt_refs(node: Node) -> Iterator[tuple[str, str | None]]:
    """(field, prompt key) of every prompt ``node`` refers to; optional ones may be None."""
    if isinstance(node, MenuNode):
        yield from (("intro", node.intro), ("prompt", node.prompt))
    elif isinstance(node, CustomerNumberNode):
        yield "prompt", node.prompt
    elif isinstance(node, PinNode):
        yield from (("prompt", node.prompt), ("retry_prompt", node.retry_prompt))
    elif isinstance(node, RouteNode):
        yield from (("prompt", node.prompt), ("after", node.after))


def check_reachable(
    names: Mapping[str, str | None], raw_nodes: Mapping[str, Any], out: list[str]
) -> None:
    """Report nodes no root reaches; of a detached part, only the nodes nothing goes to."""
    if names["start"] not in raw_nodes:
        return
    roots = [n for n in names.values() if n is not None and n in raw_nodes]
    seen = set(roots)
    queue = deque(roots)
    while queue:
        for _, target in edges(raw_nodes[queue.popleft()]):
            if target in raw_nodes and target not in seen:
                seen.add(target)
                queue.append(target)
    lost = [name for name in raw_nodes if name not in seen]
    targeted = {t for name in lost for _, t in edges(raw_nodes[name]) if t != name}
    for name in [n for n in lost if n not in targeted] or lost:
        out.append(f"node '{name}' is unreachable from start '{names['start']}'")
