"""Settings: a frozen, typed value loaded from TOML plus the environment.

Every key lives in a section dataclass below and is documented in
``config.example.toml``. Any key can also be set as ``IVR_<SECTION>_<KEY>``; the
secrets additionally accept the names Twilio users expect (``TWILIO_AUTH_TOKEN``,
``IVR_PIN_PEPPER``, ``IVR_API_TOKEN``). :func:`load` validates everything at start-up
and raises :class:`~ivr.exceptions.ConfigError` naming the offending key.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.exceptions import ConfigError
from ivr.pin_policy import PinPolicy, Rule, parse_rules

ROUTING_MODES = ("enqueue", "client", "sip", "number")
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# How long Twilio waits for a webhook's answer before it plays its error or the fallback.
TWILIO_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ServerSettings:
    public_base_url: str = ""
    trust_forwarded_headers: bool = True
    flow_file: str = "flows/service_pin.toml"
    default_region: str = "DE"
    # Every voice webhook answers within this many seconds, whatever a dependency does;
    # past it the caller is routed not identified (reason unavailable). Twilio waits 15 s.
    webhook_deadline_s: float = 2.0


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str = ""
    auth_token: str = field(default="", repr=False)
    validate_signatures: bool = True


@dataclass(frozen=True)
class RedisSettings:
    # redis://, rediss://, unix://, redis+sentinel://…/<service>, redis+cluster://seeds
    url: str = ""
    socket_timeout_s: float = 0.25
    call_ttl_s: int = 4 * 3600
    key_prefix: str = "ivr"
    # Pooled connections per process: a request beyond it waits socket_timeout_s for one.
    max_connections: int = 50
    # After counting a PIN attempt, wait this long for a replica to have it (WAIT 1 <ms>);
    # none in time: the attempt is refused as unavailable. Only where replicas exist.
    replica_ack_timeout_ms: int = 100
    # Start although maxmemory-policy may evict lockout keys (never in production).
    allow_eviction: bool = False


@dataclass(frozen=True)
class QueueSettings:
    # The Redis of the rq jobs and workers (standalone or Sentinel). Empty: [redis] url,
    # which must then not be a cluster.
    url: str = ""
    # /readyz names the queues whose oldest waiting work is older than this (a worker
    # down or stuck); /metrics has the ages in ivr_backlog_oldest_seconds.
    backlog_alert_s: int = 300


@dataclass(frozen=True)
class PinStoreSettings:
    url: str = "sqlite:///ivr.sqlite3"
    pepper: str = field(default="", repr=False)
    pepper_id: str = "k1"
    # Older peppers by key id, so hashes made before a rotation still verify.
    old_peppers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 1.0


@dataclass(frozen=True)
class PinSettings:
    length: int = 6
    # Weak PINs refused wherever a PIN is set (import, CLI, API): see ivr.pin_policy.
    rules: tuple[str, ...] = tuple(rule.value for rule in Rule)
    # Further PINs refused (e.g. the customer's service number, a company's founding year).
    blocklist: tuple[str, ...] = ()


@dataclass(frozen=True)
class LockoutSettings:
    attempts_per_call: int = 3
    account_max_failures: int = 5
    account_window_s: int = 3600
    account_lock_s: int = 1800
    caller_max_failures: int = 10
    caller_window_s: int = 3600
    caller_lock_s: int = 3600
    # All withheld numbers share one bucket: a higher limit and a shorter block, so one
    # sprayer cannot keep every withheld caller (account holders too) out for long.
    withheld_max_failures: int = 20
    withheld_window_s: int = 3600
    withheld_lock_s: int = 600
    global_alert_per_minute: int = 50


@dataclass(frozen=True)
class RoutingSettings:
    mode: str = "number"
    workflow_sid: str = ""
    client_identity: str = ""
    sip_uri: str = ""
    number: str = ""


@dataclass(frozen=True)
class ApiSettings:
    # The screen-pop API (GET /api/calls/<CallSid>): on unless turned off here; needs token.
    enabled: bool = True
    token: str = field(default="", repr=False)
    # The provisioning API (/api/accounts) for the customer system; empty: off.
    provisioning_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class ConsoleSettings:
    # Signs the agent console's session cookie; at least 32 characters when agents exist.
    secret_key: str = field(default="", repr=False)
    # username -> password hash (werkzeug.security.generate_password_hash), never passwords.
    agents: Mapping[str, str] = field(default_factory=dict, repr=False)
    supervisors: tuple[str, ...] = ()
    session_max_age_s: int = 8 * 3600
    # Open event streams per process, and per console session: each holds a server
    # thread, so keep max_streams below gunicorn's --threads (the rest serve webhooks).
    max_streams: int = 4
    max_streams_per_session: int = 2


@dataclass(frozen=True)
class ScreenPopSettings:
    # CRM webhook: POST the screen-pop JSON here (empty: no webhook).
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    timeout_s: float = 5.0
    max_retries: int = 5


@dataclass(frozen=True)
class NotifySettings:
    # Sender for lockout SMS: an E.164 number or a Messaging Service SID (MG…); empty: off.
    sms_from: str = ""


@dataclass(frozen=True)
class AuditSettings:
    retention_days: int = 90


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    twilio: TwilioSettings = field(default_factory=TwilioSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    queue: QueueSettings = field(default_factory=QueueSettings)
    pin_store: PinStoreSettings = field(default_factory=PinStoreSettings)
    pin: PinSettings = field(default_factory=PinSettings)
    lockout: LockoutSettings = field(default_factory=LockoutSettings)
    routing: RoutingSettings = field(default_factory=RoutingSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    screen_pop: ScreenPopSettings = field(default_factory=ScreenPopSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    audit: AuditSettings = field(default_factory=AuditSettings)

    def queue_url(self) -> str:
        """The rq Redis: ``[queue] url``, else ``[redis] url`` (validated not a cluster)."""
        return self.queue.url or self.redis.url

    def pin_policy(self) -> PinPolicy:
        """The PINs that may be set (validated: the rules exist)."""
        rules = parse_rules(self.pin.rules)
        assert not isinstance(rules, str), rules  # validate() refused unknown rules
        return PinPolicy(self.pin.length, rules, frozenset(self.pin.blocklist))

    def flow_path(self) -> Path:
        """The flow file; a relative path is looked up in the CWD, then the project."""
        path = Path(self.server.flow_file)
        if path.is_absolute() or path.exists():
            return path
        return PACKAGE_ROOT / path


SECRET_ENV = {
    ("twilio", "auth_token"): "TWILIO_AUTH_TOKEN",
    ("twilio", "account_sid"): "TWILIO_ACCOUNT_SID",
    ("pin_store", "pepper"): "IVR_PIN_PEPPER",
    ("api", "token"): "IVR_API_TOKEN",
    ("api", "provisioning_token"): "IVR_PROVISIONING_TOKEN",
    ("console", "secret_key"): "IVR_CONSOLE_SECRET_KEY",
    ("screen_pop", "webhook_secret"): "IVR_SCREEN_POP_WEBHOOK_SECRET",
}


def load(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    web: bool = True,
) -> Settings:
    """Read ``path`` (default: ``$IVR_CONFIG``, else built-in defaults) and the environment.

    ``web=False`` (the CLI's account, audit and worker commands) does not require what
    only the webhooks need: the Twilio auth token that checks their signatures.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    path = path if path is not None else env.get("IVR_CONFIG") or None
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist (IVR_CONFIG)") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    settings = from_mapping(raw, env)
    validate(settings, web=web)
    return settings


def from_mapping(raw: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from parsed TOML plus environment overrides; ConfigError
    lists every problem found (one ``config: …`` line each)."""
    errors: list[str] = []
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    errors.extend(f"unknown section [{name}]" for name in raw if name not in hints)
    errors.extend(_unknown_env(env, hints))
    for sf in dataclasses.fields(Settings):
        given = raw.get(sf.name, {})
        if not isinstance(given, Mapping):
            errors.append(f"[{sf.name}] must be a table")
            given = {}
        sections[sf.name] = _section(sf.name, hints[sf.name], given, env, errors)
    if errors:
        raise ConfigError("\n".join(f"config: {error}" for error in errors))
    return Settings(**sections)


def _unknown_env(env: Mapping[str, str], hints: Mapping[str, Any]) -> list[str]:
    """``IVR_<SECTION>_<KEY>`` variables of a known section that name no key (a typo
    would otherwise be ignored silently). Other ``IVR_*`` names are left alone."""
    known = {"IVR_CONFIG", *SECRET_ENV.values()}
    for section, cls in hints.items():
        known.update(f"IVR_{section.upper()}_{f.name.upper()}" for f in dataclasses.fields(cls))
    errors = []
    for name in sorted(env):
        # The longest section that prefixes it: IVR_PIN_STORE_… is [pin_store], not [pin].
        owners = [s for s in hints if name.startswith(f"IVR_{s.upper()}_")]
        if owners and name not in known:
            owner = max(owners, key=len)
            keys = ", ".join(f.name for f in dataclasses.fields(hints[owner]))
            errors.append(f"environment variable {name} names no key of [{owner}] ({keys})")
    return errors


def _section(
    name: str, cls: type[Any], given: Mapping[str, Any], env: Mapping[str, str], errors: list[str]
) -> Any:
    """The section's settings object; each bad key adds a message to ``errors`` (and
    keeps its default, so that the other keys are still checked)."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    errors.extend(f"unknown key [{name}] {key}" for key in given if key not in known)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        env_names = [f"IVR_{name.upper()}_{f.name.upper()}"]
        if (name, f.name) in SECRET_ENV:
            env_names.insert(0, SECRET_ENV[(name, f.name)])
        from_env = next((env[n] for n in env_names if env.get(n)), None)
        try:
            if from_env is not None:
                values[f.name] = _coerce(name, f.name, hints[f.name], from_env, from_env=True)
            elif f.name in given:
                values[f.name] = _coerce(name, f.name, hints[f.name], given[f.name],
                                         from_env=False)  # fmt: skip
        except ConfigError as exc:
            errors.append(str(exc).removeprefix("config: "))
    return cls(**values)


def _coerce(section: str, key: str, hint: Any, value: Any, *, from_env: bool) -> Any:
    where = f"[{section}] {key}"
    origin = typing.get_origin(hint)
    if hint is bool:
        if from_env:
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, bool):
            return value
        raise ConfigError(f"config: {where} must be true or false, got {value!r}")
    if hint is int or hint is float:
        try:
            if isinstance(value, bool) or (not from_env and not isinstance(value, int | float)):
                raise ValueError
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"config: {where} must be a number, got {value!r}") from None
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"config: {where} must be a string, got {value!r}")
        return value
    if origin is tuple:
        items = [v.strip() for v in value.split(",") if v.strip()] if from_env else value
        if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
            raise ConfigError(f"config: {where} must be a list of strings")
        return tuple(items)
    if origin in (Mapping, dict) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        if from_env:
            raise ConfigError(f"config: {where} cannot be set from the environment")
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigError(f"config: {where} must be a table of strings")
        return types.MappingProxyType(dict(value))
    raise ConfigError(f"config: {where} has an unsupported type")  # pragma: no cover


def validate(s: Settings, *, web: bool = True) -> None:
    """Raise ConfigError listing every inconsistent setting, one line each, naming its
    key (``web``: also what only the webhooks need). The checks: ivr.config_checks."""
    from ivr.config_checks import problems  # it imports this module's settings classes

    errors = problems(s, web=web)
    if errors:
        raise ConfigError("\n".join(f"config: {error}" for error in errors))
