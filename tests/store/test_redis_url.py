"""Redis URL parsing: every accepted form, every rejection, and no password in any message."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import FrozenInstanceError, replace
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.exceptions import ConfigError
from ivr.store.redis_url import RedisTarget, Topology, parse_redis_url

STANDALONE, SENTINEL, CLUSTER = Topology.STANDALONE, Topology.SENTINEL, Topology.CLUSTER
PASSWORD = "hunter2 s/e@c:r?e#t%"
ENCODED = quote(PASSWORD, safe="")  # as it is written in a URL


def target(
    topology: Topology,
    *nodes: tuple[str, int],
    service_name: str | None = None,
    db: int = 0,
    username: str | None = None,
    password: str | None = None,
    tls: bool = False,
    unix_path: str | None = None,
) -> RedisTarget:
    """The RedisTarget a table row expects; the test fills in the URL."""
    return RedisTarget(topology, "", nodes, service_name, db, username, password, tls, unix_path)


GOOD = [
    ("redis://localhost", target(STANDALONE, ("localhost", 6379))),
    ("redis://localhost/", target(STANDALONE, ("localhost", 6379))),
    ("redis://localhost:6380/2", target(STANDALONE, ("localhost", 6380), db=2)),
    ("redis://10.0.0.5:7000/15", target(STANDALONE, ("10.0.0.5", 7000), db=15)),
    ("redis://redis_cache.internal-1", target(STANDALONE, ("redis_cache.internal-1", 6379))),
    ("redis://host?db=4", target(STANDALONE, ("host", 6379), db=4)),
    ("redis://host/?db=4", target(STANDALONE, ("host", 6379), db=4)),
    ("redis://:secret@host/1", target(STANDALONE, ("host", 6379), db=1, password="secret")),
    ("redis://user:secret@h", target(STANDALONE, ("h", 6379), username="user", password="secret")),
    ("redis://user@host", target(STANDALONE, ("host", 6379), username="user")),
    ("redis://user:@host", target(STANDALONE, ("host", 6379), username="user")),
    ("redis://@host", target(STANDALONE, ("host", 6379))),
    (
        f"redis://u%40x:{ENCODED}@host",
        target(STANDALONE, ("host", 6379), username="u@x", password=PASSWORD),
    ),
    ("redis://:p@ss/w?rd#@host/3", target(STANDALONE, ("host", 6379), db=3, password="p@ss/w?rd#")),
    ("rediss://host:6380/0", target(STANDALONE, ("host", 6380), tls=True)),
    ("rediss://:secret@host", target(STANDALONE, ("host", 6379), tls=True, password="secret")),
    ("redis://[::1]", target(STANDALONE, ("::1", 6379))),
    ("redis://[::1]:6380/1", target(STANDALONE, ("::1", 6380), db=1)),
    (
        "rediss://:s@[2001:db8::7]:6380",
        target(STANDALONE, ("2001:db8::7", 6380), tls=True, password="s"),
    ),
    ("unix:///var/run/redis.sock", target(STANDALONE, unix_path="/var/run/redis.sock")),
    (
        "unix://:secret@/var/run/redis.sock?db=3",
        target(STANDALONE, unix_path="/var/run/redis.sock", db=3, password="secret"),
    ),
    (
        "unix://user:secret@/run/redis/a%40b.sock",
        target(STANDALONE, unix_path="/run/redis/a@b.sock", username="user", password="secret"),
    ),
    (
        "redis+sentinel://s1:26379,s2:26380/mymaster",
        target(SENTINEL, ("s1", 26379), ("s2", 26380), service_name="mymaster"),
    ),
    (
        "redis+sentinel://s1,s2/mymaster/2",
        target(SENTINEL, ("s1", 26379), ("s2", 26379), service_name="mymaster", db=2),
    ),
    (
        "redis+sentinel://:secret@[::1]:26380,[fe80::1]/mymaster/",
        target(
            SENTINEL, ("::1", 26380), ("fe80::1", 26379), service_name="mymaster", password="secret"
        ),
    ),
    (
        "redis+sentinel://user:secret@s1/main",
        target(SENTINEL, ("s1", 26379), service_name="main", username="user", password="secret"),
    ),
    ("redis+cluster://n1:7000,n2:7001", target(CLUSTER, ("n1", 7000), ("n2", 7001))),
    ("redis+cluster://n1", target(CLUSTER, ("n1", 6379))),
    ("redis+cluster://n1:7000/0", target(CLUSTER, ("n1", 7000))),
    (
        "redis+cluster://:secret@[::1]:7000,n2/",
        target(CLUSTER, ("::1", 7000), ("n2", 6379), password="secret"),
    ),
]

SCHEMES = "use redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://"
SENTINEL_FORM = "redis+sentinel://host:port,host:port/<service_name>"
# {pw} becomes ENCODED: each rejected URL but the blank ones carries the password.
BAD = [
    ("", "config: [redis] url is not set"),
    ("   ", "config: [redis] url is not set"),
    (" redis://:{pw}@host", "config: [redis] url has leading or trailing whitespace"),
    ("redis://:{pw}@host\n", "config: [redis] url has leading or trailing whitespace"),
    ("http://:{pw}@host", f"config: [redis] url: unsupported scheme 'http'; {SCHEMES}"),
    ("REDIS://:{pw}@host", "unsupported scheme 'REDIS'"),
    ("rediss+sentinel://:{pw}@host/m", "unsupported scheme 'rediss+sentinel'"),
    ("user:{pw}@localhost:6379", "not a URL (expected e.g. redis://host:6379/0)"),
    ("redis:/:{pw}@host", "not a URL"),
    ("redis://:{pw}@", "config: [redis] url: empty host"),
    ("redis://:{pw}@/0", "empty host"),
    ("redis://:{pw}@:6379/0", "empty host in ':6379'"),
    ("redis://:{pw}@host:abc", "config: [redis] url: port 'abc' of 'host:abc' is not a number"),
    ("redis://:{pw}@host:", "port '' of 'host:' is not a number"),
    ("redis://:{pw}@host:0", "port 0 of 'host:0' is out of range 1-65535"),
    ("redis://:{pw}@host:65536", "port 65536 of 'host:65536' is out of range 1-65535"),
    ("redis://:{pw}@host:123456789012", "is out of range 1-65535"),
    ("redis://:{pw}@ho st", "host 'ho st' is not a valid host name or address"),
    ("redis://:{pw}@host/x", "db 'x' is not a non-negative integer"),
    ("redis://:{pw}@host/-1", "db '-1' is not a non-negative integer"),
    ("redis://:{pw}@host/0/", "db '0/' is not a non-negative integer"),
    ("redis://:{pw}@host/99999999999", "db '99999999999' is not a non-negative integer"),
    ("redis://:{pw}@host?db=", "db '' is not a non-negative integer"),
    ("redis://:{pw}@host/1?db=2", "the db is given more than once"),
    ("redis://:{pw}@host?db=1&db=1", "the db is given more than once"),
    ("redis://:{pw}@host?ssl=true", "unknown query parameter 'ssl'; only ?db=N is accepted"),
    ("redis://:{pw}@host#x", "a '#' fragment is not allowed"),
    ("redis://:{pw}@a:1,b:2", "redis:// takes one host; use redis+sentinel:// or redis+cluster://"),
    ("rediss://:{pw}@a,b", "rediss:// takes one host"),
    ("redis://:{pw}@::1", "an IPv6 address needs brackets, e.g. [::1]:6379 (got '::1')"),
    ("redis://:{pw}@[::1", "'[::1' is not [IPv6 address][:port]"),
    ("redis://:{pw}@[::1]6379", "'[::1]6379' is not [IPv6 address][:port]"),
    ("redis://:{pw}@[nope]:6379", "[nope] in '[nope]:6379' is not an IPv6 address"),
    ("redis://:{pw}@[::1]:abc", "port 'abc' of '[::1]:abc' is not a number"),
    ("unix://:{pw}@", "unix:// needs a socket path: unix:///path/to/socket.sock"),
    ("unix://:{pw}@/", "unix:// needs a socket path"),
    (
        "unix://:{pw}@localhost/run/redis/r.sock",
        "unix:// takes no host: unix:///path/to/socket.sock",
    ),
    ("unix://:{pw}@/run/redis/r.sock?timeout=1", "unknown query parameter 'timeout'"),
    ("unix://:{pw}@/run/redis/r.sock?db=x", "db 'x' is not a non-negative integer"),
    (
        "redis+sentinel://:{pw}@s1:26379,s2",
        f"redis+sentinel:// needs a service name: {SENTINEL_FORM}",
    ),
    ("redis+sentinel://:{pw}@s1/", "redis+sentinel:// needs a service name"),
    ("redis+sentinel://:{pw}@s1//1", "redis+sentinel:// needs a service name"),
    ("redis+sentinel://:{pw}@s1/m/1/2", "path '/m/1/2' has too many parts"),
    ("redis+sentinel://:{pw}@s1/m/x", "db 'x' is not a non-negative integer"),
    ("redis+sentinel://:{pw}@s1,,s2/m", "empty host in 's1,,s2'"),
    ("redis+sentinel://:{pw}@/m", "empty host"),
    ("redis+sentinel://:{pw}@s1:x/m", "port 'x' of 's1:x' is not a number"),
    ("redis+sentinel://:{pw}@s1/m?db=1", "redis+sentinel:// takes no query string"),
    (
        "redis+cluster://:{pw}@n1/1",
        "redis+cluster:// takes no db (got '/1'); a cluster has only db 0",
    ),
    ("redis+cluster://:{pw}@n1:7000?x=1", "redis+cluster:// takes no query string"),
    ("redis+cluster://:{pw}@", "empty host"),
    ("redis+cluster://:{pw}@n1:70000", "port 70000 of 'n1:70000' is out of range 1-65535"),
    ("redis+cluster://:{pw}@[::1]:7000,[::2", "'[::2' is not [IPv6 address][:port]"),
]

REDACTED = [
    ("redis://:secret@host:6379/0", "redis://:***@host:6379/0"),
    ("redis://user:secret@host", "redis://user:***@host"),
    ("redis://user:@host", "redis://user:***@host"),
    ("redis://user@host", "redis://user@host"),
    ("redis://host/1", "redis://host/1"),
    ("rediss://u:p%40ss@h", "rediss://u:***@h"),
    ("redis://:p@ss/w?rd@host", "redis://:***@host"),
    ("unix://:secret@/run/redis/r.sock?db=1", "unix://:***@/run/redis/r.sock?db=1"),
    ("redis+sentinel://u:secret@s1,s2/m", "redis+sentinel://u:***@s1,s2/m"),
    ("redis+cluster://:secret@[::1]:7000", "redis+cluster://:***@[::1]:7000"),
]


@pytest.mark.parametrize(("url", "expected"), GOOD)
def test_accepted_urls(url: str, expected: RedisTarget) -> None:
    """Each accepted URL parses to exactly the expected target, keeping the URL as given."""
    assert parse_redis_url(url) == replace(expected, url=url)


@pytest.mark.parametrize(("template", "fragment"), BAD)
def test_rejected_urls(template: str, fragment: str) -> None:
    """Each bad URL raises a one-line ConfigError naming the key and never the password."""
    url = template.format(pw=ENCODED)
    assert ENCODED in url or not url.strip()
    with pytest.raises(ConfigError) as info:
        parse_redis_url(url)
    message = str(info.value)
    assert message.startswith("config: [redis] url")
    assert fragment in message
    assert "\n" not in message
    assert PASSWORD not in message and ENCODED not in message


def test_message_names_the_given_key() -> None:
    """The key passed in, not the default, prefixes every message."""
    with pytest.raises(ConfigError) as info:
        parse_redis_url(f"redis://:{ENCODED}@host:abc", key="[queue] url")
    assert str(info.value) == "config: [queue] url: port 'abc' of 'host:abc' is not a number"
    with pytest.raises(ConfigError, match=r"^config: \[queue\] url is not set$"):
        parse_redis_url("", key="[queue] url")


@pytest.mark.parametrize(("url", "redacted"), REDACTED)
def test_redacted(url: str, redacted: str) -> None:
    """redacted() is the URL with the password, and nothing else, replaced by ***."""
    assert parse_redis_url(url).redacted() == redacted


def test_repr_shows_no_credentials() -> None:
    """repr() of a target shows neither the URL, the user name nor the password."""
    shown = repr(parse_redis_url(f"redis://someone:{ENCODED}@host/2"))
    assert "someone" not in shown and PASSWORD not in shown and ENCODED not in shown
    assert shown.startswith("RedisTarget(topology=<Topology.STANDALONE: 'standalone'>")


def test_target_is_frozen_and_topology_is_a_string() -> None:
    """Targets cannot be changed after parsing, and topologies compare equal to their names."""
    parsed = parse_redis_url("redis+cluster://n1")
    with pytest.raises(FrozenInstanceError):
        parsed.db = 1  # type: ignore[misc]
    assert parsed.topology == "cluster" and Topology("sentinel") is Topology.SENTINEL


def test_module_is_pure() -> None:
    """Importing the parser loads no other Redis module: neither redis-py nor a Redis store."""
    code = "import sys, ivr.store.redis_url; print(sorted(m for m in sys.modules if 'redis' in m))"
    root = Path(__file__).resolve().parents[2]
    run = [sys.executable, "-c", code]
    out = subprocess.run(run, cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['ivr.store.redis_url']"


MARK = "\u00e4"  # never elsewhere in a generated URL: any part of it shown is a leak
# Tails that parse, and pieces to break them with: the parser must get past many checks.
TAILS = ["host", "h:6379/1", "[::1]:7000", "s1,s2:26379/mymaster/2", "/run/r.sock?db=1", ""]
PIECES = [":", "6379", "0", "abc", ",", "/", "[", "]", "::1", "?", "db=", "&", "#", "@", "%", " "]
rests = st.lists(st.sampled_from(TAILS + PIECES), max_size=6).map("".join)
# Characters that delimit URL parts are the ones a careless parser would leak.
delimiters = st.sampled_from(["@", ":", "/", "?", "#", "%", "%4", "[", "]", ",", "&", "=", " "])
password_parts = delimiters | st.text(st.characters(codec="utf-8"), min_size=1, max_size=3)
passwords = st.lists(password_parts, max_size=6).map(lambda parts: f"{MARK}{''.join(parts)}{MARK}")


@settings(max_examples=400)
@given(
    scheme=st.sampled_from(["redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "http"]),
    user=st.sampled_from(["", "user", "default"]),
    password=passwords,
    encode=st.booleans(),
    rest=rests,
)
def test_password_never_leaks(
    scheme: str, user: str, password: str, encode: bool, rest: str
) -> None:
    """Whether a URL with a password parses or not, no message, redacted() or repr() shows it."""
    written = quote(password, safe="") if encode else password
    url = f"{scheme}://{user}:{written}@{rest}"
    try:
        parsed = parse_redis_url(url)
    except ConfigError as exc:
        shown = str(exc)
    else:
        shown = parsed.redacted() + repr(parsed)
        if encode and "@" not in rest:
            assert parsed.password == password
    assert password not in shown and written not in shown
    assert MARK not in shown and quote(MARK) not in shown
