"""Declarative call flows: the TOML schema, its validation, and the frozen :class:`Flow`.

A flow file has ``[flow]`` settings, ``[nodes.<name>]`` tables (``type`` = ``menu``,
``caller_lookup``, ``customer_number``, ``pin`` or ``route``), ``[prompts."<lang>"]``
texts and optional ``[voices]``. :func:`parse_flow` collects *every* problem and raises
:class:`InvalidFlow` listing them, each prefixed with the file and naming the node, key
or language, so ``ivr flow check`` can print them all.

The node types live in :mod:`ivr.flow.nodes` and the cross-reference checks in
:mod:`ivr.flow.checks`; the node types are re-exported here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ivr.exceptions import FlowError
from ivr.flow.actions import Reason, Say
from ivr.flow.checks import (
    check_edge,
    check_languages,
    check_reachable,
    check_roots,
    edges,
    prompt_refs,
)
from ivr.flow.nodes import (
    CallerLookupNode,
    CustomerNumberNode,
    MenuKey,
    MenuNode,
    Node,
    PinNode,
    RouteNode,
)
from ivr.flow.prompts import Prompts, check_prompt_refs, parse_voices, render_prompts

__all__ = [
    "CallerLookupNode",
    "CustomerNumberNode",
    "Flow",
    "InvalidFlow",
    "MenuKey",
    "MenuNode",
    "Node",
    "PinNode",
    "RouteNode",
    "load_flow",
    "parse_flow",
]

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_MENU_KEY = re.compile(r"[0-9*#]")
_TOP = frozenset({"flow", "nodes", "prompts", "voices"})
_ROOTS = ("start", "unavailable", "no_input")
_HEAD_STRINGS = frozenset({*_ROOTS, "default_language", "no_input_prompt", "invalid_prompt"})
_HEAD_INTS = {"max_reprompts": 0, "gather_timeout_s": 1}


class InvalidFlow(FlowError):
    """A flow file failed to load or validate; ``problems`` lists every problem found."""


_STRINGS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type -> (required string fields, optional string fields)
    "menu": (("prompt",), ("intro",)),
    "caller_lookup": (("single", "other"), ()),
    "customer_number": (("prompt", "next"), ()),
    "pin": (("prompt", "retry_prompt", "verified", "failed", "locked"), ()),
    "route": (("reason",), ("prompt", "after")),
}
_OTHER_FIELDS: Mapping[str, tuple[str, ...]] = {
    "menu": ("keys",),
    "customer_number": ("max_digits",),
}


@dataclass(frozen=True)
class Flow:
    """A validated flow with its prompts pre-rendered per language."""

    source: str
    start: str
    default_language: str
    languages: tuple[str, ...]
    nodes: Mapping[str, Node]
    prompts: Prompts
    voices: Mapping[str, str]
    unavailable: str
    no_input: str
    no_input_prompt: str
    invalid_prompt: str
    pin_length: int
    attempts_per_call: int
    max_reprompts: int = 2
    gather_timeout_s: int = 6

    def says(self, language: str, keys: Sequence[str | None]) -> tuple[Say, ...]:
        """The prompts ``keys`` (None skipped) in ``language``: one Say per part, each in
        its part's language and that language's voice."""
        texts = self.prompts.get(language) or self.prompts[self.default_language]
        return tuple(
            Say(part.text, part.language, self.voices.get(part.language))
            for key in keys
            if key is not None
            for part in texts[key]
        )


def load_flow(path: Path, *, pin_length: int, attempts_per_call: int) -> Flow:
    """Read and validate the flow file at ``path``; raise FlowError naming every problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidFlow([f"{path}: cannot read flow file: {exc.strerror or exc}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidFlow([f"{path}: invalid TOML: {exc}"]) from None
    return parse_flow(
        data, source=str(path), pin_length=pin_length, attempts_per_call=attempts_per_call
    )


def parse_flow(
    data: Mapping[str, Any], *, source: str, pin_length: int, attempts_per_call: int
) -> Flow:
    """Validate parsed flow data; raise :class:`InvalidFlow` with every problem found."""
    out = [f"unknown top-level table [{key}]" for key in sorted(data.keys() - _TOP)]
    if pin_length < 1 or attempts_per_call < 1:
        out.append("pin_length and attempts_per_call must be at least 1")
    head = _head(_table(data, "flow", "[flow]", out), out)
    languages = list(head["languages"])
    raw_nodes = _table(data, "nodes", "[nodes]", out)
    nodes = {name: n for name, raw in raw_nodes.items() if (n := _node(name, raw, out))}
    values = {"pin_length": pin_length, "attempts_per_call": attempts_per_call}
    prompts = render_prompts(data.get("prompts"), languages, values, out)
    voices = parse_voices(data.get("voices"), languages, out)
    roots = {key: head[key] for key in _ROOTS}
    check_roots(roots, raw_nodes, nodes, out)
    for name, raw in raw_nodes.items():
        for label, target in edges(raw):
            check_edge(name, label, target, raw_nodes, nodes, out)
    check_languages(nodes, languages, out)
    refs = [(f"[flow] {key}", head[key]) for key in ("no_input_prompt", "invalid_prompt")]
    for node in nodes.values():
        refs += [(f"node '{node.name}' {field}", key) for field, key in prompt_refs(node)]
    check_prompt_refs(refs, prompts, out)
    check_reachable(roots, raw_nodes, out)
    if out:
        raise InvalidFlow([f"{source}: {problem}" for problem in out])
    return Flow(
        source=source,
        nodes=MappingProxyType(nodes),
        prompts=prompts,
        voices=voices,
        pin_length=pin_length,
        attempts_per_call=attempts_per_call,
        **head,
    )


# --- small typed readers; each records a problem instead of raising -------------------


def _table(data: Mapping[str, Any], key: str, where: str, out: list[str]) -> Mapping[str, Any]:
    value = data.get(key)
    if value is None:
        out.append(f"{where} is missing")
    elif not isinstance(value, Mapping):
        out.append(f"{where} must be a table")
    else:
        return value
    return {}


def _string(raw: Mapping[str, Any], key: str, where: str, out: list[str]) -> str | None:
    value = raw.get(key)
    if value is None:
        out.append(f"{where} is missing required field '{key}'")
    elif not isinstance(value, str) or not value:
        out.append(f"{where} field '{key}' must be a non-empty string")
    else:
        return value
    return None


def _int(raw: Mapping[str, Any], key: str, where: str, low: int, out: list[str]) -> int | None:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        out.append(f"{where} field '{key}' must be an integer >= {low}, got {value!r}")
        return None
    return value


def _head(raw: Mapping[str, Any], out: list[str]) -> dict[str, Any]:
    """The ``[flow]`` table as keyword arguments of :class:`Flow`."""
    for field in sorted(raw.keys() - _HEAD_STRINGS - _HEAD_INTS.keys() - {"languages"}):
        out.append(f"[flow] has unknown field '{field}'")
    head: dict[str, Any] = {key: _string(raw, key, "[flow]", out) for key in _HEAD_STRINGS}
    for key, low in _HEAD_INTS.items():
        if key in raw:
            head[key] = _int(raw, key, "[flow]", low, out)
    languages = raw.get("languages")
    if not isinstance(languages, list) or not all(isinstance(v, str) and v for v in languages):
        languages = []
    if not languages:
        out.append("[flow] field 'languages' must be a non-empty list of language tags")
    elif len(set(languages)) != len(languages):
        out.append("[flow] field 'languages' must list each language once")
    head["languages"] = tuple(dict.fromkeys(languages))
    default = head["default_language"]
    if default is not None and languages and default not in languages:
        out.append(f"[flow] default_language '{default}' is not in languages")
    return head


# --- nodes ------------------------------------------------------------------------------


def _node(name: str, raw: Any, out: list[str]) -> Node | None:
    where = f"node '{name}'"
    if not _NAME.fullmatch(name):
        out.append(f"{where}: names may only use letters, digits, '_' and '-'")
    if not isinstance(raw, Mapping):
        out.append(f"{where} must be a table")
        return None
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in _STRINGS:
        out.append(f"{where} has unknown type {kind!r} (expected one of {', '.join(_STRINGS)})")
        return None
    required, optional = _STRINGS[kind]
    allowed = {"type", *required, *optional, *_OTHER_FIELDS.get(kind, ())}
    for field in sorted(raw.keys() - allowed):
        out.append(f"{where} has unknown field '{field}'")
    s = {f: _string(raw, f, where, out) for f in required}
    s |= {f: _string(raw, f, where, out) for f in optional if f in raw}
    complete = all(s[f] is not None for f in required)
    if kind == "menu":
        keys = _menu_keys(raw.get("keys"), where, out)
        if keys is None or not complete:
            return None
        return MenuNode(name, _req(s, "prompt"), keys, s.get("intro"))
    if kind == "customer_number":
        digits = _int(raw, "max_digits", where, 1, out) if "max_digits" in raw else 12
        if not complete or digits is None:
            return None
        return CustomerNumberNode(name, _req(s, "prompt"), _req(s, "next"), digits)
    if not complete:
        return None
    if kind == "caller_lookup":
        return CallerLookupNode(name, _req(s, "single"), _req(s, "other"))
    if kind == "pin":
        return PinNode(name, *(_req(s, f) for f in required))
    return _route(name, s, where, out)


def _req(s: Mapping[str, str | None], field: str) -> str:
    return s.get(field) or ""


def _route(name: str, s: Mapping[str, str | None], where: str, out: list[str]) -> Node | None:
    reason = s.get("reason")
    if reason is None:
        return None
    if reason not in {r.value for r in Reason}:
        choices = ", ".join(r.value for r in Reason)
        out.append(f"{where} has unknown route reason '{reason}' (expected one of {choices})")
        return None
    return RouteNode(name, Reason(reason), s.get("prompt"), s.get("after"))


def _menu_keys(raw: Any, where: str, out: list[str]) -> Mapping[str, MenuKey] | None:
    if not isinstance(raw, Mapping) or not raw:
        out.append(f"{where} field 'keys' must be a non-empty table of key = {{ goto = ... }}")
        return None
    keys: dict[str, MenuKey] = {}
    for digit, spec in raw.items():
        at = f"{where} key '{digit}'"
        if not _MENU_KEY.fullmatch(digit):
            out.append(f"{at} is not a single keypad key (0-9, *, #)")
        if not isinstance(spec, Mapping):
            out.append(f"{at} must be a table with 'goto'")
            continue
        for field in sorted(spec.keys() - {"goto", "topic", "language"}):
            out.append(f"{at} has unknown field '{field}'")
        goto = _string(spec, "goto", at, out)
        topic = _string(spec, "topic", at, out) if "topic" in spec else None
        language = _switch(spec, at, out) if "language" in spec else None
        if goto is not None:
            keys[digit] = MenuKey(goto, topic, language)
    return MappingProxyType(keys)


def _switch(spec: Mapping[str, Any], at: str, out: list[str]) -> str | Mapping[str, str] | None:
    """A key's ``language``: one to switch to, or a table of caller's language -> next."""
    value = spec["language"]
    if isinstance(value, Mapping):
        if value and all(isinstance(v, str) and v for v in (*value, *value.values())):
            return MappingProxyType(dict(value))
        out.append(f"{at} field 'language' must be a language or a non-empty table of "
                   '"from" = "to" languages')  # fmt: skip
        return None
    return _string(spec, "language", at, out)
