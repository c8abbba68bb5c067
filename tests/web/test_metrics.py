"""``/metrics``: Prometheus text behind the API token, fed by real calls and real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from ivr import create_app
from ivr.config import Settings
from ivr.exceptions import ConfigError
from ivr.jobs import QUEUE_AUDIT, QUEUE_CRM
from ivr.metrics import multiprocess_dir
from ivr.services import Services, build
from tests.backlog import old_job
from tests.conftest import ACCOUNTS, API_TOKEN, SINGLE_OWNER, make_settings, seed
from tests.redis_server import free_port
from tests.twilio_phone import Call

Phone = Callable[..., Call]
PIN_ANNA = ACCOUNTS[0][3]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def scrape(client: FlaskClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_token_required(client: FlaskClient) -> None:
    """No token is 401 with a Bearer challenge, a wrong one 403, like the API."""
    missing = client.get("/metrics")
    assert missing.status_code == 401 and "Bearer" in missing.headers["WWW-Authenticate"]
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": API_TOKEN}).status_code == 401


@pytest.mark.parametrize("overrides", [{"api": {"enabled": False, "token": ""}}])
def test_no_token_configured_is_403(client: FlaskClient) -> None:
    """Without [api] token (the screen-pop API turned off), /metrics is closed to all."""
    assert client.get("/metrics", headers=AUTH).status_code == 403


@pytest.mark.parametrize("overrides", [{"lockout": {"account_max_failures": 2}}])
def test_calls_are_counted(phone: Phone, client: FlaskClient) -> None:
    """Outcomes, the lockout, routed calls, webhook latency and queue depth show up."""
    before = scrape(client)
    assert before[("ivr_pin_verifications_total", (("outcome", "wrong"),))] == 0
    good = phone(caller=SINGLE_OWNER)
    good.walk("1", PIN_ANNA)
    bad = phone(caller=SINGLE_OWNER)
    bad.walk("1", "000001", "000002", "000003")
    after = scrape(client)
    assert after[("ivr_pin_verifications_total", (("outcome", "verified"),))] == 1
    assert after[("ivr_pin_verifications_total", (("outcome", "wrong"),))] == 2
    assert after[("ivr_pin_verifications_total", (("outcome", "locked"),))] == 1
    assert after[("ivr_lockouts_total", ())] == 1
    routed = (("identified", "true"), ("reason", "verified"))
    assert after[("ivr_calls_routed_total", routed)] == 1
    assert after[("ivr_calls_routed_total", (("identified", "false"), ("reason", "locked")))] == 1
    count = after[("ivr_webhook_duration_seconds_count", (("endpoint", "voice.incoming"),))]
    assert count == 2
    assert after[("ivr_webhook_duration_seconds_count", (("endpoint", "voice.step"),))] >= 6
    assert after[("ivr_pin_failures_last_minute", ())] >= 2
    assert after[("ivr_audit_backlog", ())] == 4  # no worker ran
    assert after[("ivr_queue_depth", (("queue", "audit"),))] == 0  # attempts are not jobs
    assert after[("ivr_jobs_failed", (("queue", "crm"),))] == 0
    assert after[("ivr_redis_up", ())] == 1
    assert after[("ivr_pin_failures_alert_threshold", ())] == 50


def test_rejected_signature_is_timed_but_metrics_are_not(client: FlaskClient) -> None:
    """Only voice webhooks feed the histogram (also when refused); /metrics itself does not."""
    assert client.post("/voice", data={"CallSid": "CA1"}).status_code == 403
    samples = scrape(client)
    scrape(client)
    assert samples[("ivr_webhook_duration_seconds_count", (("endpoint", "voice.incoming"),))] == 1
    assert not any("metrics" in dict(labels).get("endpoint", "") for _, labels in samples)


def test_no_pin_in_the_metrics(phone: Phone, client: FlaskClient) -> None:
    """The exposition never contains a PIN or an account."""
    phone(caller=SINGLE_OWNER).walk("1", PIN_ANNA)
    text = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert PIN_ANNA not in text and "200001" not in text and SINGLE_OWNER not in text


@pytest.fixture
def dead_redis_app(tmp_path: object) -> Iterator[FlaskClient]:
    """The app on a Redis URL where nothing listens."""
    settings = make_settings(f"redis://127.0.0.1:{free_port()}/0", f"sqlite:///{tmp_path}/p.db")
    services = build(settings)
    yield create_app(settings, services).test_client()
    services.close()


def test_redis_down_still_answers(dead_redis_app: FlaskClient) -> None:
    """With Redis unreachable /metrics still answers 200 and says so in ivr_redis_up."""
    samples = scrape(dead_redis_app)
    assert samples[("ivr_redis_up", ())] == 0
    assert ("ivr_queue_depth", (("queue", "audit"),)) not in samples
    assert ("ivr_pin_verifications_total", (("outcome", "wrong"),)) in samples


def test_each_app_has_its_own_registry(
    settings: Settings, services: Services, phone: Phone, client: FlaskClient
) -> None:
    """A second app counts from zero: no process-global registry is shared."""
    phone(caller=SINGLE_OWNER).walk("1", PIN_ANNA)
    other_services = build(settings)
    try:
        seed(other_services)
        other = create_app(settings, other_services).test_client()
        key = ("ivr_pin_verifications_total", (("outcome", "verified"),))
        assert scrape(client)[key] == 1
        assert scrape(other)[key] == 0
    finally:
        other_services.close()


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_multiprocess_dir_is_a_clear_error(tmp_path: Path, kind: str) -> None:
    """PROMETHEUS_MULTIPROC_DIR that is no writable directory fails start-up by name."""
    target = tmp_path / "metrics"
    if kind == "file":
        target.write_text("")
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR=.* not a writable dir"):
        multiprocess_dir({"PROMETHEUS_MULTIPROC_DIR": str(target)})
    assert multiprocess_dir({}) is None


def test_backlog_age_per_queue(client: FlaskClient, services: Services) -> None:
    """ivr_backlog_oldest_seconds gives the oldest waiting job's age per queue (and the
    audit journal's): 0 where nothing waits."""
    assert scrape(client)[("ivr_backlog_oldest_seconds", (("queue", QUEUE_CRM),))] == 0
    old_job(services.queue, QUEUE_CRM, "crm-waiting", age_s=120)
    samples = scrape(client)
    assert samples[("ivr_backlog_oldest_seconds", (("queue", QUEUE_CRM),))] >= 120
    assert samples[("ivr_backlog_oldest_seconds", (("queue", QUEUE_AUDIT),))] == 0
    assert samples[("ivr_backlog_oldest_seconds", (("queue", "audit-journal"),))] == 0
