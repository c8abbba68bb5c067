"""Observers see every saved change and PIN attempt, and cannot break a call."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ivr import create_app
from ivr.config import Settings
from ivr.exceptions import DependencyError, FlowError
from ivr.flow.state import CallState, Verdict
from ivr.observers import Observers, PinAttempt
from ivr.services import Services, build
from tests.conftest import ACCOUNTS, SINGLE_OWNER
from tests.twilio_phone import Call, parse_task


class Recorder:
    def __init__(self) -> None:
        self.changes: list[tuple[CallState, CallState | None]] = []
        self.attempts: list[PinAttempt] = []
        self.statuses: list[tuple[str, str]] = []
        self.failures: list[tuple[str, DependencyError]] = []

    def call_changed(
        self, state: CallState, previous: CallState | None, status: str | None
    ) -> None:
        self.changes.append((state, previous))

    def pin_attempted(self, attempt: PinAttempt) -> None:
        self.attempts.append(attempt)

    def dependency_failed(self, call_sid: str, error: DependencyError) -> None:
        self.failures.append((call_sid, error))

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        self.statuses.append((call_sid, status))


class Broken:
    def call_changed(
        self, state: CallState, previous: CallState | None, status: str | None
    ) -> None:
        raise RuntimeError("board down")

    def pin_attempted(self, attempt: PinAttempt) -> None:
        raise RuntimeError("queue down")

    def dependency_failed(self, call_sid: str, error: DependencyError) -> None:
        raise RuntimeError("metrics down")

    def call_status(self, call_sid: str, status: str, state: CallState | None) -> None:
        raise RuntimeError("metrics down")


def with_observers(services: Services, *members: object) -> Services:
    calls = dataclasses.replace(services.calls, observers=Observers(members))  # type: ignore[arg-type]
    return dataclasses.replace(services, calls=calls)


def test_observers_see_changes_attempts_and_status(settings: Settings, services: Services) -> None:
    """Each saved step, each PIN attempt (without the PIN) and the status reach observers."""
    recorder = Recorder()
    app = create_app(settings, with_observers(services, Broken(), recorder))
    client: FlaskClient = app.test_client()
    call = Call(client=client, auth_token=settings.twilio.auth_token, caller=SINGLE_OWNER)
    routed = call.walk("1", "000000", ACCOUNTS[0][3])
    assert parse_task(routed)["identified"] is True
    call.hang_up()
    assert [prev is None for _, prev in recorder.changes] == [True, False, False, False]
    assert recorder.changes[-1][0].routed and recorder.changes[-1][0].identified
    verdicts = [a.verdict for a in recorder.attempts]
    assert verdicts == [Verdict.WRONG, Verdict.VERIFIED]
    assert all(a.customer_number == "200001" for a in recorder.attempts)
    assert ACCOUNTS[0][3] not in repr(recorder.attempts)
    assert recorder.statuses == [(call.call_sid, "completed")]


def test_bad_flow_file_stops_start_up(settings: Settings, tmp_path: Path) -> None:
    """A flow with a dangling target is a start-up error naming the node."""
    flow = tmp_path / "bad.toml"
    source = (Path(__file__).parents[1] / "flows" / "service_pin.toml").read_text()
    flow.write_text(source.replace('goto = "account"', 'goto = "acount"', 1))
    bad = dataclasses.replace(
        settings, server=dataclasses.replace(settings.server, flow_file=str(flow))
    )
    with pytest.raises(FlowError, match="acount"):
        build(bad)


def test_observer_failures_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """A failing observer is logged and the others still run."""
    recorder = Recorder()
    observers = Observers((Broken(), recorder))
    observers.call_status("CA1", "completed", None)
    assert recorder.statuses == [("CA1", "completed")]
    assert "Broken failed" in caplog.text
