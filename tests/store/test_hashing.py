"""PinHasher: keyed PIN digests, pepper rotation and pseudonymous Redis subjects."""

from __future__ import annotations

import pytest

from ivr.config import PinStoreSettings
from ivr.exceptions import ConfigError
from ivr.store.hashing import PinHasher

OLD = b"old-pepper-0123456789"
NEW = b"new-pepper-9876543210"


def test_same_pin_differs_per_customer_number() -> None:
    """Two accounts with the same PIN get different digests."""
    hasher = PinHasher({"k1": NEW}, "k1")
    assert hasher.make("1001", "123456")[1] != hasher.make("1002", "123456")[1]


def test_digest_is_keyed_by_the_pepper() -> None:
    """The same PIN under another pepper yields another digest (the pepper is the key)."""
    a = PinHasher({"k1": NEW}, "k1").make("1001", "123456")
    b = PinHasher({"k1": OLD}, "k1").make("1001", "123456")
    assert a[0] == b[0] == "k1"
    assert a[1] != b[1]
    assert len(a[1]) == 64 and "123456" not in a[1]


def test_make_then_matches() -> None:
    """A digest verifies for its PIN and customer number and for nothing else."""
    hasher = PinHasher({"k1": NEW}, "k1")
    key_id, digest = hasher.make("1001", "123456")
    assert hasher.matches("1001", "123456", key_id, digest)
    assert not hasher.matches("1001", "123457", key_id, digest)
    assert not hasher.matches("1002", "123456", key_id, digest)
    assert not hasher.needs_rehash(key_id)


def test_rotation_old_hash_verifies_and_needs_rehash() -> None:
    """A hash made under an old pepper still verifies after rotation and needs a rehash."""
    key_id, digest = PinHasher({"k1": OLD}, "k1").make("1001", "123456")
    rotated = PinHasher({"k1": OLD, "k2": NEW}, "k2")
    assert rotated.matches("1001", "123456", key_id, digest)
    assert rotated.needs_rehash(key_id)
    new_key_id, _ = rotated.make("1001", "123456")
    assert new_key_id == "k2" and not rotated.needs_rehash(new_key_id)


def test_unknown_key_id_never_matches() -> None:
    """A hash stamped with a key id the hasher does not know is rejected."""
    hasher = PinHasher({"k1": NEW}, "k1")
    _, digest = hasher.make("1001", "123456")
    assert not hasher.matches("1001", "123456", "retired", digest)


def test_garbage_digest_does_not_raise() -> None:
    """A malformed stored digest is a mismatch, not a crash."""
    hasher = PinHasher({"k1": NEW}, "k1")
    assert not hasher.matches("1001", "123456", "k1", "not-hex-ü")


def test_subject_is_stable_and_domain_separated() -> None:
    """Subjects are deterministic, 32 hex chars, differ per kind and hide the value."""
    hasher = PinHasher({"k1": NEW}, "k1")
    account = hasher.subject("account", "4915112345678")
    assert account == PinHasher({"k1": NEW}, "k1").subject("account", "4915112345678")
    assert len(account) == 32 and int(account, 16) >= 0
    assert account != hasher.subject("caller", "4915112345678")
    assert account != hasher.subject("account", "4915112345679")
    assert "4915112345678" not in account


def test_subject_is_keyed() -> None:
    """Without the pepper nobody can compute a subject: another pepper gives another one."""
    a = PinHasher({"k1": NEW}, "k1").subject("caller", "+4915112345678")
    b = PinHasher({"k1": OLD}, "k1").subject("caller", "+4915112345678")
    assert a != b


def test_from_settings_includes_old_peppers() -> None:
    """from_settings uses pepper/pepper_id as current and keeps old_peppers for verifying."""
    old = PinHasher({"k1": OLD}, "k1").make("1001", "123456")
    settings = PinStoreSettings(
        pepper=NEW.decode(), pepper_id="k2", old_peppers={"k1": OLD.decode()}
    )
    hasher = PinHasher.from_settings(settings)
    assert hasher.current_key_id == "k2"
    assert hasher.matches("1001", "123456", *old)


def test_missing_current_pepper_is_a_config_error() -> None:
    """A hasher without a pepper for its current key id refuses to start."""
    with pytest.raises(ConfigError):
        PinHasher({"k1": NEW}, "k2")
    with pytest.raises(ConfigError):
        PinHasher.from_settings(PinStoreSettings(pepper=""))
