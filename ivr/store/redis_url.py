"""Parse the Redis URLs the service accepts: pure, no I/O and no connections.

The forms follow the ``limits`` library and Celery:

==========  ===============================================================  ==============
topology    URL (``rediss://`` is ``redis://`` over TLS)                     defaults
==========  ===============================================================  ==============
standalone  ``redis://[[user]:[password]@]host[:port][/db]``                 port 6379, db 0
standalone  ``unix://[[user]:[password]@]/path/to/socket.sock[?db=N]``       db 0
sentinel    ``redis+sentinel://[user:pass@]host[:port],.../<service>[/db]``  port 26379, db 0
cluster     ``redis+cluster://[user:pass@]host[:port],host[:port]``          port 6379, db 0
==========  ===============================================================  ==============

Hosts may be IPv6 literals in brackets (``[::1]:6379``). Only ``?db=N`` is accepted as a query.
User and password are percent-decoded like redis-py. All before the last ``@`` is the user
part (write another ``@`` as ``%40``); error messages never quote it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from enum import Enum
from urllib.parse import unquote

from ivr.exceptions import ConfigError

_SCHEMES = "redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://"
_SENTINEL_FORM = "redis+sentinel://host:port,host:port/<service_name>"
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_RE = re.compile(r"[A-Za-z0-9._-]+")
_DIGITS_RE = re.compile(r"[0-9]+")
_MAX_DB = 2**31 - 1


class Topology(str, Enum):
    """How the Redis deployment behind a URL is organised."""

    STANDALONE = "standalone"
    SENTINEL = "sentinel"
    CLUSTER = "cluster"


@dataclass(frozen=True)
class RedisTarget:
    """Where and how to reach Redis, as parsed from a URL."""

    topology: Topology
    url: str = field(repr=False)  # the URL as given (may hold a password: never log it)
    nodes: tuple[tuple[str, int], ...]  # standalone TCP: ((host, port),); unix: ()
    service_name: str | None = None  # sentinel only
    db: int = 0
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    tls: bool = False  # rediss://
    unix_path: str | None = None

    def redacted(self) -> str:
        """The URL with any password replaced by ``***`` (for logs and error messages)."""
        scheme, userinfo, rest = _split(self.url)
        if userinfo is None or ":" not in userinfo:
            return self.url
        return f"{scheme}://{userinfo.partition(':')[0]}:***@{rest}"


class _Invalid(Exception):
    """A problem with the URL; the message never holds the user part."""


def parse_redis_url(url: str, key: str = "[redis] url") -> RedisTarget:
    """Parse ``url``; raise ConfigError naming ``key`` (never the password) if it is bad."""
    if not url.strip():
        raise ConfigError(f"config: {key} is not set")
    if url != url.strip():
        raise ConfigError(f"config: {key} has leading or trailing whitespace")
    try:
        return _parse(url)
    except _Invalid as exc:
        raise ConfigError(f"config: {key}: {exc}") from None


def _parse(url: str) -> RedisTarget:
    scheme, userinfo, rest = _split(url)
    if not _SCHEME_RE.fullmatch(scheme):
        raise _Invalid("not a URL (expected e.g. redis://host:6379/0)")
    if scheme not in _PARSERS:
        raise _Invalid(f"unsupported scheme {scheme!r}; use {_SCHEMES}")
    user, _, secret = (userinfo or "").partition(":")
    username, password = unquote(user) or None, unquote(secret) or None
    base = RedisTarget(Topology.STANDALONE, url, (), username=username, password=password)
    return _PARSERS[scheme](replace(base, tls=scheme == "rediss"), *_pieces(scheme, rest))


def _split(url: str) -> tuple[str, str | None, str]:
    """(scheme, user part or None, rest); the user part runs up to the last ``@``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", None, url
    userinfo, at, rest = rest.rpartition("@")
    return scheme, (userinfo if at else None), rest


def _pieces(scheme: str, rest: str) -> tuple[str, str, str | None]:
    """(hosts, path, query or None) of what follows the user part."""
    if "#" in rest:
        raise _Invalid("a '#' fragment is not allowed")
    before, question, query = rest.partition("?")
    if question and scheme.startswith("redis+"):
        raise _Invalid(f"{scheme}:// takes no query string ('?...')")
    hosts, slash, path = before.partition("/")
    return hosts, slash + path, (query if question else None)


def _standalone(base: RedisTarget, hosts: str, path: str, query: str | None) -> RedisTarget:
    if "," in hosts:
        scheme = "rediss" if base.tls else "redis"
        raise _Invalid(f"{scheme}:// takes one host; use redis+sentinel:// or redis+cluster://")
    return replace(base, nodes=(_node(hosts, 6379),), db=_db_of(path[1:], query))


def _unix(base: RedisTarget, hosts: str, path: str, query: str | None) -> RedisTarget:
    if hosts:
        raise _Invalid("unix:// takes no host: unix:///path/to/socket.sock ('@' in a path: %40)")
    if not path.strip("/"):
        raise _Invalid("unix:// needs a socket path: unix:///path/to/socket.sock")
    return replace(base, unix_path=unquote(path), db=_db_of("", query))


def _sentinel(base: RedisTarget, hosts: str, path: str, query: str | None) -> RedisTarget:
    nodes = tuple(_node(part, 26379, hosts) for part in hosts.split(","))
    service, *db = path[1:].split("/")
    if not service:
        raise _Invalid(f"redis+sentinel:// needs a service name: {_SENTINEL_FORM}")
    if len(db) > 1:
        raise _Invalid(f"path {path!r} has too many parts; expected /<service_name>[/db]")
    number = _db(db[0]) if db and db[0] else 0
    return replace(base, topology=Topology.SENTINEL, nodes=nodes, service_name=service, db=number)


def _cluster(base: RedisTarget, hosts: str, path: str, query: str | None) -> RedisTarget:
    nodes = tuple(_node(part, 6379, hosts) for part in hosts.split(","))
    if path not in ("", "/", "/0"):
        raise _Invalid(f"redis+cluster:// takes no db (got {path!r}); a cluster has only db 0")
    return replace(base, topology=Topology.CLUSTER, nodes=nodes)


_PARSERS = {
    "redis": _standalone, "rediss": _standalone, "unix": _unix,
    "redis+sentinel": _sentinel, "redis+cluster": _cluster,
}  # fmt: skip


def _node(text: str, default_port: int, within: str = "") -> tuple[str, int]:
    """``host[:port]`` or ``[ipv6][:port]`` as (host, port); IPv6 without brackets."""
    if not text:
        raise _Invalid(f"empty host in {within!r}" if within else "empty host")
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        colon, port = port[:1], port[1:]
        if not bracket or colon not in ("", ":"):
            raise _Invalid(f"{text!r} is not [IPv6 address][:port]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _Invalid(f"[{host}] in {text!r} is not an IPv6 address") from None
    elif text.count(":") > 1:
        raise _Invalid(f"an IPv6 address needs brackets, e.g. [::1]:6379 (got {text!r})")
    else:
        host, colon, port = text.partition(":")
        if not host:
            raise _Invalid(f"empty host in {text!r}")
        if not _HOST_RE.fullmatch(host):
            raise _Invalid(f"host {host!r} is not a valid host name or address")
    if not colon:
        return host, default_port
    if not _DIGITS_RE.fullmatch(port):
        raise _Invalid(f"port {port!r} of {text!r} is not a number")
    if len(port) > 5 or not 1 <= int(port) <= 65535:
        raise _Invalid(f"port {port} of {text!r} is out of range 1-65535")
    return host, int(port)


def _db_of(path_db: str, query: str | None) -> int:
    """The db of a redis://, rediss:// or unix:// URL: from the path or ``?db=N``."""
    found, items = ([path_db] if path_db else []), (query.split("&") if query else [])
    for name, _, value in (item.partition("=") for item in items):
        if name != "db":
            raise _Invalid(f"unknown query parameter {name!r}; only ?db=N is accepted")
        found.append(value)
    if len(found) > 1:
        raise _Invalid("the db is given more than once (path or ?db=N)")
    return _db(found[0]) if found else 0


def _db(text: str) -> int:
    if not _DIGITS_RE.fullmatch(text) or len(text) > 10 or int(text) > _MAX_DB:
        raise _Invalid(f"db {text!r} is not a non-negative integer up to {_MAX_DB}")
    return int(text)
