"""Every error the service raises on purpose.

    IVRError
    ├── ConfigError        a setting is missing or wrong; the message names the key
    ├── FlowError          a flow file is invalid; ``problems`` lists each, naming node or prompt
    ├── ImportRowError     a row of an accounts CSV is invalid; carries the line number
    ├── AccountNotFound    a CLI command or API call named a customer number that does not exist
    ├── VersionMismatch    an account changed since the version a request named (If-Match)
    └── DependencyError    Redis or the PIN store did not answer in time
        └── ReplicaAckError  no Redis replica acknowledged a lockout count in time

Webhooks never let these reach Twilio: a dependency failure routes the caller to an agent
as not identified (reason ``unavailable``); the CLI prints the message on one line.
"""

from __future__ import annotations

from collections.abc import Sequence


class IVRError(Exception):
    """Base class of every error this package raises deliberately."""


class ConfigError(IVRError):
    """A configuration value is missing or invalid."""


class FlowError(IVRError):
    """A flow definition is invalid; ``problems`` lists every problem, one per line."""

    def __init__(self, problems: Sequence[str] | str) -> None:
        self.problems: tuple[str, ...] = (
            (problems,) if isinstance(problems, str) else tuple(problems)
        )
        super().__init__("\n".join(self.problems))


class ImportRowError(IVRError):
    """A CSV row could not be imported; nothing of the file was written."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


class AccountNotFound(IVRError):
    """No account has the given customer number."""


class VersionMismatch(IVRError):
    """The account is not at the version the request named (``If-Match``), or exists
    where the request required that it did not (``If-None-Match: *``)."""


class DependencyError(IVRError):
    """Redis or the PIN store failed or timed out."""


class ReplicaAckError(DependencyError):
    """A counted PIN failure is not on any replica yet: a failover could forget it."""
