"""``ivr flow check`` and ``ivr flow graph`` on good, broken and missing flow files."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ivr.cli import cli
from ivr.config import PACKAGE_ROOT

DEFAULT_FLOW = PACKAGE_ROOT / "flows" / "service_pin.toml"


@pytest.fixture(autouse=True)
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No IVR_CONFIG from the environment; an empty working directory."""
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def ivr(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def broken_flow(tmp_path: Path) -> Path:
    text = DEFAULT_FLOW.read_text(encoding="utf-8")
    text = text.replace('"1" = { goto = "account", topic = "payments" }',
                        '"1" = { goto = "acount", topic = "payments" }')  # fmt: skip
    text = text.replace('next = "pin"', 'next = "pin"\ncolour = "red"')
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_default_flow_without_any_config() -> None:
    """With no FILE and no config, the default flow is checked and found fine."""
    result = ivr("flow", "check")
    assert result.exit_code == 0, result.output
    assert "service_pin.toml: OK" in result.stdout and "de-DE, en-US" in result.stdout


def test_check_prints_every_problem_with_its_location(tmp_path: Path) -> None:
    """Each problem is its own line naming file and node; the summary is one error line."""
    path = broken_flow(tmp_path)
    result = ivr("flow", "check", str(path))
    assert result.exit_code == 1
    problems = result.stdout.splitlines()
    assert any("node 'menu' key '1' goes to unknown node 'acount'" in p for p in problems)
    assert any("node 'customer_number' has unknown field 'colour'" in p for p in problems)
    assert all(p.startswith(f"{path}: ") for p in problems)
    assert result.stderr.splitlines() == [
        f"error: {path}: {len(problems)} problems; fix them and run this again"
    ]


def test_unknown_or_unreadable_flow_file(tmp_path: Path) -> None:
    """A missing file is one line naming the fix; invalid TOML is reported as a problem."""
    result = ivr("flow", "check", "nope.toml")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: flow file nope.toml does not exist: pass an existing FILE or set [server] flow_file"
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("[flow\n")
    result = ivr("flow", "graph", str(bad))
    assert result.exit_code == 1 and "invalid TOML" in result.stdout
    assert "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["mermaid", "dot", "svg"])
def test_graph_formats(fmt: str, tmp_path: Path) -> None:
    """Each format goes to standard output, or to --output."""
    result = ivr("flow", "graph", "--format", fmt)
    assert result.exit_code == 0, result.output
    first = {"mermaid": "flowchart TD", "dot": "digraph flow {", "svg": "<svg "}[fmt]
    assert result.stdout.startswith(first)
    out = tmp_path / f"flow.{fmt}"
    result = ivr("flow", "graph", str(DEFAULT_FLOW), "--format", fmt, "-o", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text(encoding="utf-8").startswith(first)
    if fmt == "svg":
        ET.fromstring(out.read_text(encoding="utf-8"))


def test_graph_uses_the_configured_pin_length(tmp_path: Path) -> None:
    """With a config, the picture shows its PIN length and attempts per call."""
    conf = tmp_path / "ivr.toml"
    conf.write_text(
        '[twilio]\nauth_token = "t0123456789abcdef"\n'
        '[pin_store]\npepper = "pepper-0123456789abcdef"\n'
        '[routing]\nnumber = "+4930901820"\n'
        "[pin]\nlength = 4\n[lockout]\nattempts_per_call = 2\n"
    )
    result = ivr("--config", str(conf), "flow", "graph")
    assert result.exit_code == 0, result.output
    assert "Service-PIN: 4 digits" in result.stdout and "wrong x2" in result.stdout


def test_graph_bad_format_and_bad_config_are_one_line(tmp_path: Path) -> None:
    """An unknown format is a usage error; a broken config names each key that is
    wrong, one error line each."""
    assert ivr("flow", "graph", "--format", "png").exit_code == 2
    conf = tmp_path / "bad.toml"
    conf.write_text("[pin]\nlength = 40\n")
    result = ivr("--config", str(conf), "flow", "check")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert all(line.startswith("error: config: ") for line in lines), lines
    assert any("[pin] length" in line for line in lines) and len(lines) > 1
