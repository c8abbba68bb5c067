"""Keyed PIN hashes (HMAC-SHA256 with a server-side pepper) and pseudonymous subjects.

The pepper lives in the configuration or the environment, never in the database, so a
stolen database alone does not let anyone brute-force the (short, numeric) PINs. Every
hash carries the id of the pepper that made it, so the pepper can be rotated: hashes made
under an old pepper still verify and are rewritten under the current one on next success.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from ivr.config import PinStoreSettings
from ivr.exceptions import ConfigError

SUBJECT_HEX_CHARS = 32


class PinHasher:
    """Makes and checks PIN digests; derives Redis subjects that hide numbers."""

    def __init__(self, peppers: Mapping[str, bytes], current_key_id: str) -> None:
        if not peppers.get(current_key_id):
            raise ConfigError(f"pin_store: no pepper for the current key id {current_key_id!r}")
        self._peppers = dict(peppers)
        self._current = current_key_id
        # A separate key for subjects, so a subject can never be confused with (or used
        # to test guesses against) a PIN digest made with the pepper itself.
        self._subject_key = hmac.new(
            self._peppers[current_key_id], b"ivr/lockout-subject/v1", hashlib.sha256
        ).digest()

    @classmethod
    def from_settings(cls, s: PinStoreSettings) -> PinHasher:
        """The hasher for ``[pin_store] pepper``/``pepper_id`` plus ``old_peppers``."""
        peppers = {key_id: value.encode("utf-8") for key_id, value in s.old_peppers.items()}
        peppers[s.pepper_id] = s.pepper.encode("utf-8")
        return cls(peppers, s.pepper_id)

    @property
    def current_key_id(self) -> str:
        """Key id that :meth:`make` stamps on new hashes."""
        return self._current

    def make(self, customer_number: str, pin: str) -> tuple[str, str]:
        """Return ``(key_id, hex digest)`` for ``pin`` under the current pepper."""
        return self._current, self._digest(self._peppers[self._current], customer_number, pin)

    def matches(self, customer_number: str, pin: str, key_id: str, digest: str) -> bool:
        """True when ``pin`` hashes to ``digest`` under the pepper ``key_id`` (constant time)."""
        pepper = self._peppers.get(key_id)
        # An unknown key id still costs one HMAC so that the answer takes the same time.
        computed = self._digest(pepper or self._peppers[self._current], customer_number, pin)
        same = hmac.compare_digest(computed.encode("ascii"), digest.encode("ascii", "replace"))
        return same and pepper is not None

    def needs_rehash(self, key_id: str) -> bool:
        """True when a hash was made under a pepper other than the current one."""
        return key_id != self._current

    def subject(self, kind: str, value: str) -> str:
        """A short keyed pseudonym of ``value`` for Redis keys, separated per ``kind``.

        Redis then never holds a customer number or phone number in clear. Subjects are
        tied to the current pepper: a rotation starts every lockout counter afresh.
        """
        msg = kind.encode("utf-8") + b"\x00" + value.encode("utf-8")
        return hmac.new(self._subject_key, msg, hashlib.sha256).hexdigest()[:SUBJECT_HEX_CHARS]

    @staticmethod
    def _digest(pepper: bytes, customer_number: str, pin: str) -> str:
        # Binding the customer number in makes equal PINs of different accounts differ
        # and stops one precomputed table covering every account.
        msg = customer_number.encode("utf-8") + b"\x00" + pin.encode("utf-8")
        return hmac.new(pepper, msg, hashlib.sha256).hexdigest()
