"""``ivr call --keys`` against the real app served over HTTP, signed like Twilio."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from ivr.cli import cli
from ivr.cli.call import EXIT_FAILED, EXIT_NO_AGENT, EXIT_NOT_IDENTIFIED, EXIT_USAGE
from ivr.cli.dev_support import DevSession, write_session
from ivr.config import Settings
from tests.cli.helpers import assert_one_line_error
from tests.conftest import ACCOUNTS, SHARED_NUMBER, SINGLE_OWNER
from tests.live_server import serving
from tests.redis_server import free_port
from tests.twilio_phone import PUBLIC_BASE

PIN = ACCOUNTS[0][3]


def config_text(settings: Settings, **changes: str) -> str:
    """A config file equivalent to ``settings``; ``changes`` replace "section.key" values."""
    values: dict[str, dict[str, Any]] = {
        "server": {"public_base_url": settings.server.public_base_url},
        "twilio": {"auth_token": settings.twilio.auth_token},
        "redis": {"url": settings.redis.url},
        "pin_store": {"url": settings.pin_store.url, "pepper": settings.pin_store.pepper},
        "routing": {
            "mode": settings.routing.mode,
            "workflow_sid": settings.routing.workflow_sid,
            "client_identity": settings.routing.client_identity,
            "sip_uri": settings.routing.sip_uri,
            "number": settings.routing.number,
        },
        "api": {"token": settings.api.token},
    }
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        values[section][key] = value
    return "".join(
        f"[{section}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in keys.items())
        for section, keys in values.items()
    )


def serve(app: Flask) -> Iterator[str]:
    with serving(app) as url:
        yield url


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    """The app under test listening on a free port, as `ivr dev` would serve it."""
    yield from serve(app)


@pytest.fixture
def conf(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The service's config as a file, in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVR_CONFIG", raising=False)
    path = tmp_path / "ivr.toml"
    path.write_text(config_text(settings))
    return path


def dial(conf: Path, base_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(conf), "call", "--url", base_url, *args])


def test_scripted_call_reaches_an_agent_identified(conf: Path, base_url: str) -> None:
    """Menu key, then the PIN ended with '#': routed identified, exit 0, screen-pop shown."""
    result = dial(conf, base_url, "--from", SINGLE_OWNER, "--keys", f"1,{PIN}#")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Say [de-DE" in out and "Gather numDigits=1" in out
    assert "Gather numDigits=6 finishOnKey='#'" in out
    assert "Enqueue workflowSid=WW" in out and "identified=true" in out
    assert '"identified": true' in out and '"name": "Anna Alpha"' in out
    assert "Reached an agent: IDENTIFIED" in out
    # The '#' after six digits comes too late to matter; the PIN shows only as typed keys.
    assert [line for line in out.splitlines() if PIN in line] == [f"  keys: {PIN}"]


def test_wrong_pins_reach_an_agent_not_identified(conf: Path, base_url: str) -> None:
    """Three wrong PINs end at an agent without the flag: a distinct exit status."""
    result = dial(conf, base_url, "--from", SINGLE_OWNER, "--keys", "1,000000,000001,000002")
    assert result.exit_code == EXIT_NOT_IDENTIFIED, result.output
    assert '"reason": "wrong_pin"' in result.stdout
    assert '"identified": false' in result.stdout


@pytest.mark.parametrize("withheld", ["anonymous", "Restricted", "", "+266696687"])
def test_withheld_caller_is_asked_for_the_customer_number(
    conf: Path, base_url: str, withheld: str
) -> None:
    """Every withheld form makes the IVR ask for the customer number, ended with '#'."""
    customer = ACCOUNTS[0][0]
    result = dial(conf, base_url, "--from", withheld, "--keys", f"2,{customer}#,{PIN}")
    assert result.exit_code == 0, result.output
    assert "Gather numDigits=any finishOnKey='#'" in result.stdout
    assert f"keys: {customer}, ended with #" in result.stdout
    assert '"caller": null' in result.stdout


def test_shared_number_and_english_menu(conf: Path, base_url: str) -> None:
    """Key 9 switches the prompts to en-US; a shared number asks for the customer number."""
    customer = ACCOUNTS[1][0]
    keys = f"9,1,{customer}#,{ACCOUNTS[1][3]}#"
    result = dial(conf, base_url, "--from", SHARED_NUMBER, "--keys", keys)
    assert result.exit_code == 0, result.output
    assert "Say [en-US" in result.stdout and "customer number" in result.stdout


def test_silence_reprompts_then_routes_not_identified(conf: Path, base_url: str) -> None:
    """Empty script entries are timeouts; after the re-prompts the caller still gets an agent."""
    result = dial(conf, base_url, "--keys", ",,,")
    assert result.exit_code == EXIT_NOT_IDENTIFIED, result.output
    assert result.stdout.count("keys: (none: timeout)") == 3
    assert '"reason": "no_input"' in result.stdout


def test_partial_pin_times_out_and_is_submitted(conf: Path, base_url: str) -> None:
    """Fewer keys than numDigits and no '#' are posted on timeout, like Twilio does."""
    result = dial(conf, base_url, "--from", SINGLE_OWNER, "--keys", f"1,123,{PIN}")
    assert result.exit_code == 0, result.output
    assert "keys: 123\n" in result.stdout
    assert "ungültig" in result.stdout  # the IVR judged the short entry invalid


def test_script_running_out_hangs_up(conf: Path, base_url: str) -> None:
    """When the scripted keys end before an agent is reached, the caller hangs up (exit 3)."""
    result = dial(conf, base_url, "--keys", "1")
    assert result.exit_code == EXIT_NO_AGENT, result.output
    assert "(caller hangs up)" in result.stdout


@pytest.mark.parametrize(
    "overrides",
    [
        {"routing": {"mode": "client", "client_identity": "agents"}},
        {"routing": {"mode": "sip", "sip_uri": "sip:agents@pbx.example.com"}},
    ],
    ids=["client", "sip"],
)
def test_dial_shows_its_parameters_and_flag(conf: Path, base_url: str) -> None:
    """Dial to a client or SIP URI is shown with its parameters and the identified flag."""
    result = dial(conf, base_url, "--from", SINGLE_OWNER, "--keys", f"1,{PIN}")
    assert result.exit_code == 0, result.output
    assert "Dial answerOnBridge=true timeout=30" in result.stdout
    assert "identified=true" in result.stdout and "identified flag: true" in result.stdout


def test_unreachable_service_is_one_line(conf: Path) -> None:
    """No service at --url: one error line that says how to start it, exit 4."""
    result = dial(conf, f"http://127.0.0.1:{free_port()}", "--keys", "1")
    assert_one_line_error(result, "cannot reach the service", "ivr dev", status=EXIT_FAILED)


def test_wrong_auth_token_is_a_403_that_names_the_fix(
    settings: Settings, tmp_path: Path, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signing with another token than the service's is refused; the error names the fix."""
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other.toml"
    other.write_text(config_text(settings, **{"twilio.auth_token": "another-token-123456"}))
    result = dial(other, base_url, "--keys", "1")
    assert_one_line_error(result, "403", "signature", "auth_token", status=EXIT_FAILED)


def test_wrong_public_url_is_a_403(conf: Path, base_url: str) -> None:
    """Signing over another public URL than the service validates against fails the call."""
    result = dial(conf, base_url, "--public-url", "https://elsewhere.example", "--keys", "1")
    assert_one_line_error(result, "403", "public_base_url", status=EXIT_FAILED)


def test_bad_keys_and_missing_config_are_usage_errors(
    conf: Path, base_url: str, tmp_path: Path
) -> None:
    """Keys that are not DTMF, or no config at all, are one-line errors with exit 2."""
    result = dial(conf, base_url, "--keys", "1,12a")
    assert_one_line_error(result, "--keys", status=EXIT_USAGE)
    bare = CliRunner().invoke(cli, ["call", "--url", base_url, "--keys", "1"])
    assert_one_line_error(bare, "--config", "ivr dev", status=EXIT_USAGE)


def test_keys_from_a_pipe_one_line_per_gather(conf: Path, base_url: str) -> None:
    """Without --keys and without a terminal, each input line answers one Gather."""
    result = CliRunner().invoke(
        cli,
        ["--config", str(conf), "call", "--url", base_url, "--from", SINGLE_OWNER],
        input=f"1\n{PIN}#\n",
    )
    assert result.exit_code == 0, result.output


def test_defaults_come_from_the_running_ivr_dev(conf: Path, base_url: str) -> None:
    """Without --config and --url, the call goes to the `ivr dev` of this directory,
    signed over the public URL it validates against."""
    write_session(DevSession(base_url, PUBLIC_BASE, str(conf)))
    result = CliRunner().invoke(cli, ["call", "--from", SINGLE_OWNER, "--keys", f"1,{PIN}"])
    assert result.exit_code == 0, result.output
    assert f"Calling {PUBLIC_BASE}/voice" in result.stdout
