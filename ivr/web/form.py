"""Webhook parameters, parsed once per request with a parser much cheaper than werkzeug's.

Twilio posts a few dozen short ``application/x-www-form-urlencoded`` fields on every
webhook; werkzeug's ``request.form`` (a MultiDict built through ``parse_qsl``) was a large
share of a webhook's CPU. The same fields feed the signature check and the handlers, so
what was signed is exactly what is read.

The result equals werkzeug's for every urlencoded body (same splitting, ``+`` and percent
decoding, invalid escapes kept as written). Deliberately narrower: only the urlencoded
content type is read (Twilio sends nothing else; multipart is not parsed), and a body that
is not UTF-8 gives no parameters, as werkzeug's silent parser does (a query string that
is not UTF-8 likewise, where ``request.args`` raised). The body size is
bounded by Flask's ``MAX_CONTENT_LENGTH`` (413) because it is read through
``request.get_data``.
"""

from __future__ import annotations

import codecs
from collections.abc import ItemsView
from typing import overload
from urllib.parse import quote, unquote

from flask import Request

URLENCODED = "application/x-www-form-urlencoded"
_FORM_KEY = "ivr.web.form"
_ARGS_KEY = "ivr.web.args"
_REQUOTE = "ivr.url_requote"


def _requote(error: UnicodeError) -> tuple[str, int]:
    # A percent escape that is not UTF-8 stays as written ("%FF"), like werkzeug's
    # "werkzeug.url_quote" handler, so nothing collapses into U+FFFD.
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return quote(error.object[error.start : error.end], safe=""), error.end


codecs.register_error(_REQUOTE, _requote)


class Params:
    """Decoded fields: every value of a repeated key, in the order they were sent."""

    __slots__ = ("_lists",)

    def __init__(self, lists: dict[str, list[str]]) -> None:
        self._lists = lists

    @overload
    def get(self, key: str) -> str | None: ...

    @overload
    def get(self, key: str, default: str) -> str: ...

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first value of ``key`` (what ``MultiDict.get`` returns), else ``default``."""
        values = self._lists.get(key)
        return values[0] if values else default

    def getall(self, key: str) -> list[str]:
        """Every value of ``key`` in order (empty when absent)."""
        return list(self._lists.get(key, ()))

    def lists(self) -> ItemsView[str, list[str]]:
        """``(key, values)`` per distinct key, keys in order of first appearance."""
        return self._lists.items()

    def __repr__(self) -> str:
        # Keys only: values may hold digits, and reprs end up in logs.
        return f"Params(keys={list(self._lists)})"


EMPTY = Params({})


def parse(data: bytes) -> Params:
    """``data`` (an urlencoded body or query string) decoded; not UTF-8 → no parameters."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return EMPTY
    lists: dict[str, list[str]] = {}
    for part in text.split("&"):
        if not part:
            continue  # "a=1&&b=2": empty segments carry nothing (parse_qsl skips them)
        key, _, value = part.partition("=")
        # Almost every Twilio field is plain text: decode only parts that need it.
        if "%" in part or "+" in part:
            key, value = _unquote(key), _unquote(value)
        lists.setdefault(key, []).append(value)
    return Params(lists)


# Every way "%XX" can spell an ASCII character (hex digits in either case).
_ASCII_ESCAPES = {
    f"{high}{low}": chr(int(f"{high}{low}", 16))
    for high in "01234567"
    for low in "0123456789abcdefABCDEF"
}


def _unquote(part: str) -> str:
    """``unquote_plus`` as werkzeug calls it, with a fast path for ASCII escapes ("%2B")."""
    part = part.replace("+", " ")
    head, *chunks = part.split("%")
    decoded = [head]
    for chunk in chunks:
        char = _ASCII_ESCAPES.get(chunk[:2])
        if char is None:
            # Multi-byte UTF-8, an invalid escape or a lone "%": the general decoder.
            return unquote(part, "utf-8", _REQUOTE)
        decoded += (char, chunk[2:])
    return "".join(decoded)


def form(request: Request) -> Params:
    """The request's form fields, parsed on first use and kept for the request."""
    cached = request.environ.get(_FORM_KEY)
    if isinstance(cached, Params):
        return cached
    params = _read_body(request) if request.mimetype == URLENCODED else EMPTY
    request.environ[_FORM_KEY] = params
    return params


def _read_body(request: Request) -> Params:
    if "form" in request.__dict__:
        # Code that ran earlier let werkzeug parse the body, which consumes it without
        # caching the bytes (get_data() would be empty and every signature would fail).
        # werkzeug's cached_property keeps the result in __dict__: reuse it.
        return Params({key: list(values) for key, values in request.form.lists()})
    return parse(request.get_data())


def args(request: Request) -> Params:
    """The request's query-string parameters, parsed on first use and kept."""
    cached = request.environ.get(_ARGS_KEY)
    if isinstance(cached, Params):
        return cached
    params = parse(request.query_string)
    request.environ[_ARGS_KEY] = params
    return params
