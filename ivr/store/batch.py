"""Redis writes gathered while a webhook runs, sent in one round trip with its state save.

A Redis round trip costs a webhook more CPU than anything it computes, so writes that may
wait until the end of the webhook are not sent one by one: the lockout's success reset,
the audit entry of a PIN attempt and the call's compare-and-set all go out in one
pipeline (:func:`~ivr.store.redis_client.round_trip`; no MULTI: each command stands on
its own, as it would have sent alone). Scripts go by EVALSHA; one the server does not
know (first use, or Redis was restarted) is re-run with its source, so nothing is lost
or counted twice; such a re-run comes after the batch's other commands, so a batch must
not depend on the order between a script and a later command (the app's never do).

A command is *essential* (its failure fails the webhook's save: the caller is handed over
as ``unavailable``) or not (a side channel: its failure is logged and ignored, like an
observer's).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

from ivr.store.redis_client import dependency_errors, round_trip

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """One Redis command of a batch; ``script`` is set for an EVALSHA of that script."""

    args: tuple[Any, ...]
    script: Script | None = None
    essential: bool = True
    what: str = "write"  # names the command in a log line or an error (never a value)


class Batch:
    """An ordered list of commands to send together (not thread-safe: one per webhook)."""

    def __init__(self) -> None:
        self._commands: list[Command] = []

    def __len__(self) -> int:
        return len(self._commands)

    def command(self, *args: Any, essential: bool = True, what: str = "write") -> None:
        """Add a plain command, e.g. ``batch.command("EXPIRE", key, 60)``."""
        self._commands.append(Command(args, None, essential, what))

    def script(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        essential: bool = True,
        what: str = "script",
    ) -> None:
        """Add a run of ``script`` with ``keys`` and ``args`` (sent as EVALSHA)."""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        self._commands.append(Command(command, script, essential, what))

    def send(self, client: redis.Redis, operation: str = "batched write") -> list[Any]:
        """Send every command in one round trip; the results, in order.

        A failed non-essential command's result is None. DependencyError (naming
        ``operation``) when Redis cannot be reached or an essential command failed.
        """
        if not self._commands:
            return []
        with dependency_errors(operation):
            results = round_trip(client, [command.args for command in self._commands])
            return [_settle(c, r) for c, r in zip(self._commands, results, strict=True)]


def _settle(command: Command, result: Any) -> Any:
    """The result of one command, re-running a script the server did not know."""
    if isinstance(result, NoScriptError) and command.script is not None:
        keys_count = int(command.args[2])
        keys = command.args[3 : 3 + keys_count]
        args = command.args[3 + keys_count :]
        try:
            return command.script(keys=keys, args=args)
        except redis.RedisError as exc:
            result = exc
    if not isinstance(result, Exception):
        return result
    if command.essential:
        raise result
    log.warning("batched %s failed (%s); ignored", command.what, type(result).__name__)
    return None
