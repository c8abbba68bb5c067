"""Flow files: parsing, pre-rendered prompts, and validation that names every problem."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ivr.exceptions import FlowError
from ivr.flow.actions import Reason, Say
from ivr.flow.model import (
    CallerLookupNode,
    CustomerNumberNode,
    Flow,
    InvalidFlow,
    MenuKey,
    MenuNode,
    PinNode,
    RouteNode,
    load_flow,
    parse_flow,
)
from ivr.flow.prompts import Part

LANGUAGES = ("de-DE", "en-US")
PROMPT_KEYS = (
    "hello", "menu", "number", "pin", "retry", "silence", "invalid",
    "ok", "bye", "wrong", "locked", "other", "gave_up", "sorry",
)  # fmt: skip


def _route(reason: str, prompt: str | None = None, after: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "route", "reason": reason}
    if prompt:
        node["prompt"] = prompt
    if after:
        node["after"] = after
    return node


def flow_data() -> dict[str, Any]:
    """A small valid flow using every node type; prompt texts are ``[<lang>] <key>``."""
    prompts = {lang: {key: f"[{lang}] {key}" for key in PROMPT_KEYS} for lang in LANGUAGES}
    for lang in LANGUAGES:
        prompts[lang]["pin"] = f"[{lang}] pin of {{pin_length}} digits"
    return {
        "flow": {
            "start": "menu",
            "default_language": "de-DE",
            "languages": list(LANGUAGES),
            "unavailable": "unavailable",
            "no_input": "no_input",
            "no_input_prompt": "silence",
            "invalid_prompt": "invalid",
        },
        "voices": {"de-DE": "Polly.Vicki-Neural", "en-US": "Polly.Joanna-Neural"},
        "nodes": {
            "menu": {
                "type": "menu",
                "intro": "hello",
                "prompt": "menu",
                "keys": {
                    "1": {"goto": "account", "topic": "payments"},
                    "0": {"goto": "other", "topic": "other"},
                    "9": {"goto": "menu", "language": "en-US"},
                    "*": {"goto": "menu"},
                },
            },
            "account": {"type": "caller_lookup", "single": "pin", "other": "number"},
            "number": {"type": "customer_number", "prompt": "number", "next": "pin"},
            "pin": {
                "type": "pin",
                "prompt": "pin",
                "retry_prompt": "retry",
                "verified": "verified",
                "failed": "wrong_pin",
                "locked": "locked",
            },
            "verified": _route("verified", "ok", "bye"),
            "wrong_pin": _route("wrong_pin", "wrong", "bye"),
            "locked": _route("locked", "locked", "bye"),
            "other": _route("not_required"),
            "no_input": _route("no_input", "gave_up", "bye"),
            "unavailable": _route("unavailable", "sorry", "bye"),
        },
        "prompts": prompts,
    }


def parse(data: dict[str, Any]) -> Flow:
    """parse_flow with the test source name, a 4-digit PIN and 3 attempts per call."""
    return parse_flow(data, source="test.toml", pin_length=4, attempts_per_call=3)


def _set(*path_then_value: Any) -> Callable[[dict[str, Any]], None]:
    """A change setting the nested key given by all but the last argument to the last."""
    *path, value = path_then_value

    def change(data: dict[str, Any]) -> None:
        *parents, last = path
        for key in parents:
            data = data[key]
        data[last] = value

    return change


def _del(*path: str) -> Callable[[dict[str, Any]], None]:
    """A change deleting the nested key given by ``path``."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path
        for key in parents:
            data = data[key]
        del data[last]

    return change


def test_valid_flow_parses_into_typed_nodes() -> None:
    """A valid flow yields typed nodes, flow defaults and the declared languages and voices."""
    flow = parse(flow_data())
    assert flow.start == "menu" and flow.default_language == "de-DE"
    assert flow.languages == LANGUAGES
    assert (flow.max_reprompts, flow.gather_timeout_s) == (2, 6)
    assert (flow.pin_length, flow.attempts_per_call) == (4, 3)
    assert flow.voices["en-US"] == "Polly.Joanna-Neural"
    menu = flow.nodes["menu"]
    assert isinstance(menu, MenuNode) and menu.intro == "hello"
    assert menu.keys["9"] == MenuKey("menu", None, "en-US")
    assert flow.nodes["account"] == CallerLookupNode("account", "pin", "number")
    assert flow.nodes["number"] == CustomerNumberNode("number", "number", "pin", 12)
    assert isinstance(flow.nodes["pin"], PinNode)
    assert flow.nodes["other"] == RouteNode("other", Reason.NOT_REQUIRED, None, None)


def test_placeholders_are_rendered_at_load() -> None:
    """``{pin_length}`` is replaced by the configured PIN length in every language."""
    flow = parse(flow_data())
    assert flow.prompts["de-DE"]["pin"] == (Part("[de-DE] pin of 4 digits", "de-DE"),)
    assert flow.prompts["en-US"]["pin"] == (Part("[en-US] pin of 4 digits", "en-US"),)


def test_prompt_parts_are_spoken_in_their_own_language() -> None:
    """A prompt's part in another declared language is its own Say, in that language's voice."""
    data = flow_data()
    data["prompts"]["de-DE"]["menu"] = [
        "  Menü für {pin_length} Stellen. ",
        {"text": "For English, press 9.", "language": "en-US"},
        "Sterntaste.",
    ]
    flow = parse(data)
    assert flow.prompts["de-DE"]["menu"] == (
        Part("Menü für 4 Stellen.", "de-DE"),
        Part("For English, press 9.", "en-US"),
        Part("Sterntaste.", "de-DE"),
    )
    assert flow.says("de-DE", ["hello", "menu"]) == (
        Say("[de-DE] hello", "de-DE", "Polly.Vicki-Neural"),
        Say("Menü für 4 Stellen.", "de-DE", "Polly.Vicki-Neural"),
        Say("For English, press 9.", "en-US", "Polly.Joanna-Neural"),
        Say("Sterntaste.", "de-DE", "Polly.Vicki-Neural"),
    )


@pytest.mark.parametrize(
    ("language", "presses"),
    [("de-DE", "en-US"), ("en-US", "de-DE"), ("fr-FR", "fr-FR")],
    ids=["german to english", "english back to german", "unlisted stays"],
)
def test_language_table_switches_by_the_callers_language(language: str, presses: str) -> None:
    """A key's language table switches from the caller's language to the one it names."""
    data = flow_data()
    data["nodes"]["menu"]["keys"]["9"]["language"] = {"de-DE": "en-US", "en-US": "de-DE"}
    menu = parse(data).nodes["menu"]
    assert isinstance(menu, MenuNode)
    assert menu.keys["9"].language_after(language) == presses


def test_flow_settings_are_read() -> None:
    """max_reprompts and gather_timeout_s from [flow] override the defaults."""
    data = flow_data()
    data["flow"] |= {"max_reprompts": 0, "gather_timeout_s": 9}
    flow = parse(data)
    assert (flow.max_reprompts, flow.gather_timeout_s) == (0, 9)


def test_flow_is_immutable() -> None:
    """The flow, its nodes, keys and prompt tables cannot be changed after load."""
    flow = parse(flow_data())
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.start = "pin"  # type: ignore[misc]
    with pytest.raises(TypeError):
        flow.nodes["x"] = flow.nodes["menu"]  # type: ignore[index]
    with pytest.raises(TypeError):
        flow.prompts["de-DE"]["menu"] = "x"  # type: ignore[index]
    menu = flow.nodes["menu"]
    assert isinstance(menu, MenuNode)
    with pytest.raises(TypeError):
        menu.keys["5"] = MenuKey("menu")  # type: ignore[index]


INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "unknown type",
        _set("nodes", "menu", "type", "menuu"),
        "node 'menu' has unknown type 'menuu'",
    ),
    ("missing type", _del("nodes", "other", "type"), "node 'other' has unknown type None"),
    (
        "missing field",
        _del("nodes", "pin", "retry_prompt"),
        "node 'pin' is missing required field 'retry_prompt'",
    ),
    ("unknown field", _set("nodes", "pin", "retry_promt", "x"), "node 'pin' has unknown field"),
    (
        "key to unknown node",
        _set("nodes", "menu", "keys", "1", "goto", "acount"),
        "test.toml: node 'menu' key '1' goes to unknown node 'acount'",
    ),
    (
        "next to unknown node",
        _set("nodes", "number", "next", "pinn"),
        "node 'number' next goes to unknown node 'pinn'",
    ),
    (
        "single to unknown node",
        _set("nodes", "account", "single", "nope"),
        "node 'account' single goes to unknown node 'nope'",
    ),
    (
        "locked to unknown node",
        _set("nodes", "pin", "locked", "nope"),
        "node 'pin' locked goes to unknown node 'nope'",
    ),
    (
        "pin target not a route",
        _set("nodes", "pin", "failed", "menu"),
        "node 'pin' failed goes to 'menu', which is not a route node",
    ),
    (
        "verified to other reason",
        _set("nodes", "pin", "verified", "wrong_pin"),
        "node 'pin' verified goes to route 'wrong_pin', whose reason is not 'verified'",
    ),
    (
        "verified route from menu",
        _set("nodes", "menu", "keys", "2", {"goto": "verified"}),
        "node 'menu' key '2' goes to verified route 'verified'",
    ),
    (
        "unreachable node",
        _set("nodes", "orphan", _route("not_required")),
        "node 'orphan' is unreachable",
    ),
    (
        "prompt missing in a language",
        _del("prompts", "en-US", "retry"),
        "node 'pin' retry_prompt 'retry' is missing in language 'en-US'",
    ),
    (
        "intro missing in a language",
        _del("prompts", "de-DE", "hello"),
        "node 'menu' intro 'hello' is missing in language 'de-DE'",
    ),
    (
        "flow prompt missing",
        _del("prompts", "de-DE", "invalid"),
        "[flow] invalid_prompt 'invalid' is missing in language 'de-DE'",
    ),
    (
        "unused prompt in one language",
        _set("prompts", "de-DE", "extra", "Extra"),
        "prompt 'extra' is missing in language 'en-US'",
    ),
    ("empty prompt", _set("prompts", "en-US", "ok", " "), "prompt 'ok' in language 'en-US' must"),
    (
        "unknown placeholder",
        _set("prompts", "de-DE", "pin", "{pin_lenght} Stellen"),
        "prompt 'pin' in language 'de-DE' uses unknown placeholder {pin_lenght}",
    ),
    (
        "language table missing",
        _del("prompts", "en-US"),
        "[prompts] has no table of texts for language 'en-US'",
    ),
    (
        "prompts for undeclared language",
        _set("prompts", "fr-FR", {"menu": "Menu"}),
        "[prompts] language 'fr-FR' is not declared",
    ),
    (
        "switch to undeclared language",
        _set("nodes", "menu", "keys", "9", "language", "fr-FR"),
        "node 'menu' key '9' switches to undeclared language 'fr-FR'",
    ),
    (
        "switch from undeclared language",
        _set("nodes", "menu", "keys", "9", "language", {"fr-FR": "de-DE"}),
        "node 'menu' key '9' switches from undeclared language 'fr-FR'",
    ),
    (
        "switch back to undeclared language",
        _set("nodes", "menu", "keys", "9", "language", {"de-DE": "en-US", "en-US": "fr-FR"}),
        "node 'menu' key '9' switches to undeclared language 'fr-FR'",
    ),
    (
        "empty language table",
        _set("nodes", "menu", "keys", "9", "language", {}),
        "node 'menu' key '9' field 'language' must be a language or a non-empty table",
    ),
    (
        "language table of non-strings",
        _set("nodes", "menu", "keys", "9", "language", {"de-DE": 9}),
        "node 'menu' key '9' field 'language' must be a language or a non-empty table",
    ),
    (
        "part in undeclared language",
        _set("prompts", "de-DE", "menu", ["Menü", {"text": "Menu", "language": "fr-FR"}]),
        "prompt 'menu' in language 'de-DE' has a part in undeclared language 'fr-FR'",
    ),
    (
        "part without language",
        _set("prompts", "de-DE", "menu", ["Menü", {"text": "Menu"}]),
        "prompt 'menu' in language 'de-DE' has a part in undeclared language None",
    ),
    (
        "part without text",
        _set("prompts", "de-DE", "menu", ["Menü", {"language": "en-US"}]),
        "prompt 'menu' in language 'de-DE' must be a non-empty string",
    ),
    (
        "empty part",
        _set("prompts", "en-US", "menu", ["Menu", " "]),
        "prompt 'menu' in language 'en-US' must be a non-empty string",
    ),
    ("no parts", _set("prompts", "en-US", "menu", []), "prompt 'menu' in language 'en-US' must"),
    (
        "part with unknown field",
        _set("prompts", "de-DE", "menu", [{"text": "Menu", "language": "en-US", "voice": "x"}]),
        "prompt 'menu' in language 'de-DE' has a part with unknown field 'voice'",
    ),
    (
        "unknown placeholder in a part",
        _set("prompts", "de-DE", "menu", ["Menü", {"text": "{pin}", "language": "en-US"}]),
        "prompt 'menu' in language 'de-DE' uses unknown placeholder {pin}",
    ),
    (
        "unknown route reason",
        _set("nodes", "wrong_pin", "reason", "wrong"),
        "node 'wrong_pin' has unknown route reason 'wrong'",
    ),
    (
        "unavailable not a route",
        _set("flow", "unavailable", "menu"),
        "[flow] unavailable node 'menu' must be a route node",
    ),
    (
        "no_input not a route",
        _set("flow", "no_input", "number"),
        "[flow] no_input node 'number' must be a route node",
    ),
    (
        "unavailable with other reason",
        _set("flow", "unavailable", "no_input"),
        "[flow] unavailable node 'no_input' must have reason 'unavailable'",
    ),
    ("start unknown", _set("flow", "start", "mneu"), "[flow] start names unknown node 'mneu'"),
    ("letter key", _set("nodes", "menu", "keys", "a", {"goto": "menu"}), "key 'a' is not"),
    ("two-digit key", _set("nodes", "menu", "keys", "12", {"goto": "menu"}), "key '12'"),
    ("key without goto", _del("nodes", "menu", "keys", "1", "goto"), "key '1' is missing"),
    ("no keys", _set("nodes", "menu", "keys", {}), "node 'menu' field 'keys' must be"),
    (
        "default language undeclared",
        _set("flow", "default_language", "fr-FR"),
        "[flow] default_language 'fr-FR' is not in languages",
    ),
    ("no languages", _set("flow", "languages", []), "'languages' must be a non-empty list"),
    ("duplicate language", _set("flow", "languages", ["de-DE", "de-DE"]), "each language once"),
    ("voice undeclared", _set("voices", "fr-FR", "Polly.Lea"), "[voices] language 'fr-FR'"),
    ("negative reprompts", _set("flow", "max_reprompts", -1), "'max_reprompts' must be an integer"),
    ("bool timeout", _set("flow", "gather_timeout_s", True), "'gather_timeout_s' must be"),
    ("unknown flow field", _set("flow", "strat", "menu"), "[flow] has unknown field 'strat'"),
    ("missing flow field", _del("flow", "no_input"), "[flow] is missing required field 'no_input'"),
    ("zero max_digits", _set("nodes", "number", "max_digits", 0), "'max_digits' must be"),
    (
        "bad node name",
        _set("nodes", "my node", _route("not_required")),
        "node 'my node': names may",
    ),
    ("no nodes", _del("nodes"), "[nodes] is missing"),
    ("unknown table", _set("node", {}), "unknown top-level table [node]"),
]


@pytest.mark.parametrize(
    ("change", "expected"), [(c, e) for _, c, e in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_flow_names_the_problem(
    change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    """Each invalid flow raises FlowError whose message names the node, key or language."""
    data = flow_data()
    change(data)
    with pytest.raises(FlowError) as caught:
        parse(data)
    assert expected in str(caught.value)
    assert isinstance(caught.value, InvalidFlow)
    assert all(p.startswith("test.toml: ") for p in caught.value.problems)


def test_every_problem_is_reported_at_once() -> None:
    """Several independent mistakes are all listed, one per line, not just the first."""
    data = flow_data()
    _set("nodes", "menu", "keys", "1", "goto", "acount")(data)
    _del("prompts", "en-US", "ok")(data)
    _set("nodes", "locked", "reason", "blocked")(data)
    with pytest.raises(InvalidFlow) as caught:
        parse(data)
    lines = str(caught.value).splitlines()
    assert lines == list(caught.value.problems)
    assert any("key '1' goes to unknown node 'acount'" in line for line in lines)
    assert any("'ok' is missing in language 'en-US'" in line for line in lines)
    assert any("unknown route reason 'blocked'" in line for line in lines)


def test_broken_node_does_not_cascade() -> None:
    """A node with an unknown type is reported once, not again as an unknown target."""
    data = flow_data()
    data["nodes"]["account"]["type"] = "lookup"
    with pytest.raises(InvalidFlow) as caught:
        parse(data)
    assert caught.value.problems == (
        "test.toml: node 'account' has unknown type 'lookup' (expected one of menu, "
        "caller_lookup, customer_number, pin, route)",
    )


def test_flow_data_is_not_modified() -> None:
    """parse_flow leaves its input untouched."""
    data = flow_data()
    before = copy.deepcopy(data)
    parse(data)
    assert data == before


def test_load_flow_reads_toml(tmp_path: Path) -> None:
    """load_flow parses a TOML file and names it as the flow's source."""
    path = tmp_path / "flow.toml"
    text = Path("flows/service_pin.toml").read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    flow = load_flow(path, pin_length=5, attempts_per_call=2)
    assert flow.source == str(path)
    assert "5-stellige" in flow.prompts["de-DE"]["pin"][0].text


def test_load_flow_prefixes_problems_with_the_path(tmp_path: Path) -> None:
    """A broken reference in a file is reported with the file's path."""
    path = tmp_path / "flow.toml"
    text = Path("flows/service_pin.toml").read_text(encoding="utf-8")
    path.write_text(text.replace('single = "pin"', 'single = "pn"'), encoding="utf-8")
    with pytest.raises(FlowError, match="single goes to unknown node 'pn'") as caught:
        load_flow(path, pin_length=6, attempts_per_call=3)
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    "text",
    ['[flow\nstart = "menu"\n', 'start = "menu\n', "[flow]\nstart = 'a'\nstart = 'b'\n"],
    ids=["unclosed table", "unclosed string", "duplicate key"],
)
def test_bad_toml_is_a_flow_error(tmp_path: Path, text: str) -> None:
    """Unparseable TOML raises FlowError naming the file, not a TOMLDecodeError."""
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FlowError, match="invalid TOML") as caught:
        load_flow(path, pin_length=6, attempts_per_call=3)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_flow_error(tmp_path: Path) -> None:
    """A flow file that does not exist raises FlowError naming it."""
    path = tmp_path / "missing.toml"
    with pytest.raises(FlowError, match="cannot read flow file") as caught:
        load_flow(path, pin_length=6, attempts_per_call=3)
    assert str(path) in str(caught.value)
