"""Settings load from TOML and the environment; bad values fail naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import config
from ivr.config import PACKAGE_ROOT
from ivr.exceptions import ConfigError

SECRETS = {
    "TWILIO_AUTH_TOKEN": "token-0123456789abcdef",
    "IVR_PIN_PEPPER": "pepper-0123456789abcdef",
    "IVR_API_TOKEN": "api-token-0123456789abcdef",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ivr.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_with_secrets_from_environment() -> None:
    """config.example.toml documents a valid configuration once secrets and the real
    workflow SID (instead of its placeholder) are in the env."""
    env = {**SECRETS, "IVR_ROUTING_WORKFLOW_SID": "WW" + "0123456789abcdef" * 2}
    settings = config.load(PACKAGE_ROOT / "config.example.toml", env=env)
    assert settings.twilio.auth_token == SECRETS["TWILIO_AUTH_TOKEN"]
    assert settings.pin_store.pepper == SECRETS["IVR_PIN_PEPPER"]
    assert settings.api.token == SECRETS["IVR_API_TOKEN"]
    assert settings.routing.mode == "enqueue"


def test_example_placeholders_are_refused() -> None:
    """config.example.toml's placeholder workflow SID, copied unchanged, is refused."""
    with pytest.raises(ConfigError, match=r"\[routing\] workflow_sid must be WW and 32 hex"):
        config.load(PACKAGE_ROOT / "config.example.toml", env=SECRETS)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """A config with several mistakes (parse-level, then consistency) names each of them,
    one line each."""
    parse = write(tmp_path, '[pin]\nlength = "six"\n[redis]\nhost = "x"\n[nope]\n')
    with pytest.raises(ConfigError) as info:
        config.load(parse, env={**SECRETS, "IVR_REDIS_URLL": "redis://x"})
    lines = str(info.value).splitlines()
    assert all(line.startswith("config: ") for line in lines)
    for key in ("[pin] length", "[redis] host", "[nope]", "IVR_REDIS_URLL"):
        assert sum(key in line for line in lines) == 1, lines
    consistency = write(tmp_path, '[pin]\nlength = 3\n[routing]\nmode = "enqueue"\n')
    with pytest.raises(ConfigError) as info:
        config.load(consistency, env=SECRETS)
    assert len(str(info.value).splitlines()) == 2, str(info.value)


def test_example_config_documents_every_key() -> None:
    """Every settings key appears in config.example.toml."""
    import dataclasses
    import typing

    text = (PACKAGE_ROOT / "config.example.toml").read_text(encoding="utf-8")
    hints = typing.get_type_hints(config.Settings)
    for section in dataclasses.fields(config.Settings):
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(hints[section.name]):
            assert f"{key.name} =" in text or f"[{section.name}.{key.name}]" in text, key.name


def test_environment_overrides_any_key(tmp_path: Path) -> None:
    """IVR_<SECTION>_<KEY> overrides the file, with the right type."""
    path = write(
        tmp_path, '[lockout]\naccount_max_failures = 5\n[routing]\nnumber = "+4930123456"\n'
    )
    env = {**SECRETS, "IVR_LOCKOUT_ACCOUNT_MAX_FAILURES": "7", "IVR_REDIS_URL": "redis://x:1/0"}
    settings = config.load(path, env=env)
    assert settings.lockout.account_max_failures == 7
    assert settings.redis.url == "redis://x:1/0"


def test_config_file_from_ivr_config_variable(tmp_path: Path) -> None:
    """IVR_CONFIG names the file when no path is given."""
    path = write(tmp_path, '[pin]\nlength = 8\n[routing]\nnumber = "+4930123456"\n')
    assert config.load(env={**SECRETS, "IVR_CONFIG": str(path)}).pin.length == 8


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ("[pin]\nlength = 3\n", {}, "[pin] length"),
        ('[pin]\nlength = "six"\n', {}, "[pin] length"),
        ('[pin]\nrules = ["same", "dates"]\n', {}, "[pin] rules: unknown rule 'dates'"),
        ('[pin]\nblocklist = ["1234"]\n', {}, "[pin] blocklist"),
        ("", {"IVR_SERVER_WEBHOOK_DEADLINE_S": "15"}, "[server] webhook_deadline_s"),
        ("[console]\nmax_streams = 0\n", {}, "[console] max_streams"),
        ("[lockout]\naccount_lock_s = 0\n", {}, "[lockout] account_lock_s"),
        ("[redis]\nmax_connections = 0\n", {}, "[redis] max_connections"),
        ("", {"IVR_REDIS_MAX_CONNECTIONS": "many"}, "[redis] max_connections"),
        ('[routing]\nmode = "carrier-pigeon"\n', {}, "[routing] mode"),
        ('[routing]\nmode = "enqueue"\n', {}, "[routing] workflow_sid"),
        ('[routing]\nmode = "client"\n', {}, "[routing] client_identity"),
        ('[routing]\nmode = "sip"\nsip_uri = "agents@pbx"\n', {}, "[routing] sip_uri"),
        ('[routing]\nmode = "number"\nnumber = "12"\n', {}, "[routing] number"),
        ('[server]\npublic_base_url = "ngrok.app"\n', {}, "[server] public_base_url"),
        ('[twilio]\nvalidate_signatures = "yes"\n', {}, "[twilio] validate_signatures"),
        ('[redis]\nurl = "localhost:6379"\n', {}, "[redis] url"),
        ('[redis]\nkey_prefix = "ivr%s"\n', {}, "[redis] key_prefix"),
        ("", {"IVR_REDIS_KEY_PREFIX": "ivr{x}"}, "[redis] key_prefix"),
        ('[redis]\nkey_prefix = ""\n', {}, "[redis] key_prefix"),
        ('[redis]\nhost = "x"\n', {}, "[redis] host"),
        ("[queue]\nx = 1\n", {}, "[queue]"),
        ('[redis]\nurl = "http://r:6379"\n', {}, "[redis] url: unsupported scheme"),
        ('[redis]\nurl = "redis+sentinel://s:26379"\n', {}, "[redis] url: redis+sentinel"),
        ('[redis]\nurl = "redis+cluster://a:1,b:2"\n', {}, "[queue] url is required"),
        ('[queue]\nurl = "redis+cluster://a:1"\n', {}, "[queue] url must be a standalone"),
        ('[queue]\nurl = "redis://q:x/0"\n', {}, "[queue] url: port"),
        ("[redis]\nreplica_ack_timeout_ms = 250\n", {}, "[redis] replica_ack_timeout_ms"),
        ("[redis]\nreplica_ack_timeout_ms = 0\n", {}, "[redis] replica_ack_timeout_ms"),
        ("", {"IVR_PIN_PEPPER": "short"}, "[pin_store] pepper"),
        ("", {"TWILIO_AUTH_TOKEN": ""}, "[twilio] auth_token"),
        ("", {"IVR_API_TOKEN": "short"}, "[api] token"),
        ("", {"IVR_API_TOKEN": ""}, "[api] token is required while [api] enabled"),
        ("", {"IVR_PROVISIONING_TOKEN": "short"}, "[api] provisioning_token"),
        (
            "",
            {"IVR_PROVISIONING_TOKEN": "api-token-0123456789abcdef"},
            "[api] provisioning_token must differ",
        ),
        ("", {"IVR_LOCKOUT_ACCOUNT_MAX_FAILURES": "many"}, "[lockout] account_max_failures"),
        ("[pin\n", {}, "not valid TOML"),
        ("", {"IVR_REDIS_URLL": "redis://x"}, "IVR_REDIS_URLL names no key of [redis]"),
        ("", {"IVR_PIN_STORE_URLL": "x"}, "IVR_PIN_STORE_URLL names no key of [pin_store]"),
        ('[twilio]\naccount_sid = "ACxxxxxxxx"\n', {}, "[twilio] account_sid"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, toml: str, env: dict[str, str], key: str) -> None:
    """Each invalid setting fails at load with a message naming its key."""
    base = '[routing]\nnumber = "+4930123456"\n' if "[routing]" not in toml else ""
    path = write(tmp_path, base + toml)
    with pytest.raises(ConfigError) as info:
        config.load(path, env={**SECRETS, **env})
    assert key in str(info.value)


def test_the_screen_pop_api_may_be_turned_off(tmp_path: Path) -> None:
    """With [api] enabled = false no token is needed."""
    path = write(tmp_path, '[routing]\nnumber = "+4930123456"\n[api]\nenabled = false\n')
    assert config.load(path, env={**SECRETS, "IVR_API_TOKEN": ""}).api.enabled is False


@pytest.mark.parametrize(
    ("toml", "queue"),
    [
        ('[redis]\nurl = "redis://r:6379/2"\n', "redis://r:6379/2"),
        ('[redis]\nurl = "redis+sentinel://s1:26379,s2:26379/mymaster/1"\n',
         "redis+sentinel://s1:26379,s2:26379/mymaster/1"),
        ('[redis]\nurl = "redis+cluster://a:7000,b:7001"\n[queue]\nurl = "redis://q:6379/0"\n',
         "redis://q:6379/0"),
    ],
)  # fmt: skip
def test_queue_url_defaults_to_a_single_redis(tmp_path: Path, toml: str, queue: str) -> None:
    """rq's Redis is [queue] url, else [redis] url when that is one Redis or Sentinel."""
    path = write(tmp_path, '[routing]\nnumber = "+4930123456"\n' + toml)
    assert config.load(path, env=SECRETS).queue_url() == queue


def test_redis_url_error_never_shows_the_password(tmp_path: Path) -> None:
    """A bad [redis] url is reported without the password it carries."""
    path = write(
        tmp_path,
        '[routing]\nnumber = "+4930123456"\n[redis]\nurl = "redis+sentinel://:hunter2secret@s:1"\n',
    )
    with pytest.raises(ConfigError) as info:
        config.load(path, env=SECRETS)
    assert "[redis] url" in str(info.value) and "hunter2secret" not in str(info.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    """A config path that does not exist is reported as such."""
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml", env=SECRETS)
