"""The consistency checks of :class:`~ivr.config.Settings`: each problem is one message
naming its key; :func:`ivr.config.validate` reports them all at once."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from ivr import phone
from ivr.config import (
    ROUTING_MODES,
    TWILIO_TIMEOUT_S,
    ApiSettings,
    PinSettings,
    RoutingSettings,
    Settings,
)
from ivr.exceptions import ConfigError
from ivr.pin_policy import parse_rules
from ivr.store.keys import PREFIX as KEY_PREFIX
from ivr.store.redis_url import Topology, parse_redis_url

# What follows the two letters of a Twilio SID (WW…, AC…).
_SID = re.compile(r"[0-9a-fA-F]{32}")


def _positive(errors: list[str], section: str, obj: Any) -> None:
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0:
            errors.append(f"[{section}] {f.name} must be greater than 0")


def problems(s: Settings, *, web: bool = True) -> list[str]:
    """Every inconsistent setting, each a message naming its key (``web``: also what
    only the webhooks need)."""
    errors: list[str] = []
    for section in (
        "redis",
        "queue",
        "pin_store",
        "pin",
        "lockout",
        "console",
        "screen_pop",
        "audit",
    ):
        _positive(errors, section, getattr(s, section))
    url = s.server.public_base_url
    if url and not url.startswith(("http://", "https://")):
        errors.append("[server] public_base_url must start with http:// or https://")
    if not 0 < s.server.webhook_deadline_s < TWILIO_TIMEOUT_S:
        errors.append("[server] webhook_deadline_s must be above 0 and below Twilio's 15 s")
    if not 4 <= s.pin.length <= 12:
        errors.append("[pin] length must be between 4 and 12")
    errors.extend(_pin_errors(s.pin))
    if web and s.twilio.validate_signatures and not s.twilio.auth_token:
        errors.append("[twilio] auth_token is required while validate_signatures = true")
    if len(s.pin_store.pepper) < 16:
        errors.append("[pin_store] pepper must be set to at least 16 characters (IVR_PIN_PEPPER)")
    if not s.pin_store.pepper_id or s.pin_store.pepper_id in s.pin_store.old_peppers:
        errors.append("[pin_store] pepper_id must be non-empty and not reused in old_peppers")
    errors.extend(_api_errors(s.api, web))
    errors.extend(_redis_errors(s))
    errors.extend(_routing_errors(s.routing, s.server.default_region))
    errors.extend(_side_channel_errors(s))
    return errors


def _api_errors(api: ApiSettings, web: bool) -> list[str]:
    errors = []
    if web and api.enabled and not api.token:
        errors.append("[api] token is required while [api] enabled = true (IVR_API_TOKEN); "
                      "set enabled = false to turn the screen-pop API off")  # fmt: skip
    if api.token and len(api.token) < 16:
        errors.append("[api] token must be at least 16 characters (IVR_API_TOKEN)")
    if api.provisioning_token and len(api.provisioning_token) < 32:
        errors.append("[api] provisioning_token must be at least 32 characters "
                      "(IVR_PROVISIONING_TOKEN)")  # fmt: skip
    if api.provisioning_token and api.provisioning_token == api.token:
        errors.append("[api] provisioning_token must differ from [api] token")
    return errors


def _pin_errors(pin: PinSettings) -> list[str]:
    rules = parse_rules(pin.rules)
    errors = [rules] if isinstance(rules, str) else []
    for value in pin.blocklist:
        if len(value) != pin.length or not value.isascii() or not value.isdigit():
            errors.append(f"[pin] blocklist entries must be {pin.length} digits, got {value!r}")
    return errors


def _redis_errors(s: Settings) -> list[str]:
    errors: list[str] = []
    if not KEY_PREFIX.fullmatch(s.redis.key_prefix):
        errors.append("[redis] key_prefix must be 1-32 letters, digits, '.', '_', ':' or '-'")
    if s.redis.replica_ack_timeout_ms >= s.redis.socket_timeout_s * 1000:
        errors.append("[redis] replica_ack_timeout_ms must be below socket_timeout_s")
    state = _url_errors(errors, s.redis.url, "[redis] url")
    queue = _url_errors(errors, s.queue.url, "[queue] url")
    if queue is Topology.CLUSTER:
        errors.append("[queue] url must be a standalone or Sentinel Redis (rq needs one Redis)")
    elif state is Topology.CLUSTER and not s.queue.url:
        errors.append("[queue] url is required when [redis] url is a cluster (rq needs one Redis)")
    return errors


def _url_errors(errors: list[str], url: str, key: str) -> Topology | None:
    if not url:
        return None
    try:
        return parse_redis_url(url, key).topology
    except ConfigError as exc:
        errors.append(str(exc).removeprefix("config: "))
        return None


def _routing_errors(r: RoutingSettings, region: str) -> list[str]:
    if r.mode not in ROUTING_MODES:
        return [f"[routing] mode must be one of {', '.join(ROUTING_MODES)}, got {r.mode!r}"]
    if r.mode == "enqueue" and not r.workflow_sid.startswith("WW"):
        return ["[routing] workflow_sid (WW…) is required when mode = 'enqueue'"]
    if r.mode == "enqueue" and not _SID.fullmatch(r.workflow_sid[2:]):
        # e.g. config.example.toml's WWxxxx… placeholder, copied unchanged
        return ["[routing] workflow_sid must be WW and 32 hex digits (is it a placeholder?)"]
    if r.mode == "client" and not r.client_identity:
        return ["[routing] client_identity is required when mode = 'client'"]
    if r.mode == "sip" and not r.sip_uri.startswith(("sip:", "sips:")):
        return ["[routing] sip_uri (sip:…) is required when mode = 'sip'"]
    if r.mode == "number" and phone.normalize(r.number, region) is None:
        return ["[routing] number must be a valid phone number when mode = 'number'"]
    return []


def _side_channel_errors(s: Settings) -> list[str]:
    errors: list[str] = []
    if s.console.agents and len(s.console.secret_key) < 32:
        errors.append("[console] secret_key must be at least 32 characters when agents exist")
    for name in s.console.supervisors:
        if name not in s.console.agents:
            errors.append(f"[console] supervisors names {name!r}, who is not in [console.agents]")
    for name, hashed in s.console.agents.items():
        if ":" not in hashed or "$" not in hashed:
            errors.append(f"[console.agents] {name} must be a password hash, not a password")
    hook = s.screen_pop
    if hook.webhook_url and not hook.webhook_url.startswith(("http://", "https://")):
        errors.append("[screen_pop] webhook_url must start with http:// or https://")
    if hook.webhook_url and len(hook.webhook_secret) < 16:
        errors.append("[screen_pop] webhook_secret (16+ characters) is required with webhook_url")
    sid = s.twilio.account_sid
    if sid and not (sid.startswith("AC") and _SID.fullmatch(sid[2:])):
        errors.append("[twilio] account_sid must be AC and 32 hex digits (is it a placeholder?)")
    if s.notify.sms_from and not (s.twilio.account_sid and s.twilio.auth_token):
        errors.append("[notify] sms_from needs [twilio] account_sid and auth_token")
    return errors
