"""Load a call's state and count its PIN submission in one round trip (single Redis).

A PIN webhook loaded the call's state, then ran the lockout count: two round trips before
the comparison, and in ``bench/run`` each round trip costs ~17 % of the step's
throughput. When a request is a PIN submission (its URL names a PIN prompt and its digits
are a complete PIN: :func:`ivr.flow.engine.submits_pin`), :meth:`PinStepLoader.load` runs
one script that reads the state and, exactly when the engine will verify that submission,
counts it with the same Lua functions as :meth:`Lockout.begin` (caller, global, account,
in that order, atomically).

The engine's conditions are repeated in the script: the stored call is this CallSid, at
this prompt and step, well formed, not yet routed, with a claimed customer number. The
lockout subjects (keyed hashes, never the numbers) are stored beside the state's fields
(:func:`sidecar`, written with every save), because the script has to find the account's
keys before Python has seen the state. It therefore builds those key names itself, which
only a single Redis allows: on a Cluster, and for a state stored without subjects, the
call service loads and counts in two round trips as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from ivr.flow.state import CallState
from ivr.store.batch import Batch
from ivr.store.calls import CallStore, Sidecar
from ivr.store.hashing import PinHasher
from ivr.store.lockout import ANONYMOUS_CALLER, Attempt, Lockout, attempt_of
from ivr.store.lockout_scripts import attempt_function
from ivr.store.redis_client import text

ACCOUNT_FIELD = "_a"
CALLER_FIELD = "_c"

_MAIN = """
-- KEYS[1] call state, KEYS[2] global bucket now, KEYS[3] the previous one
-- ARGV[1] CallSid, ARGV[2] prompt node, ARGV[3] step, ARGV[4..7] the lockout's key
-- templates (caller fails, caller block, account fails, account lock; '%s' = subject),
-- ARGV[8..14] the attempt's ARGV (Lockout.attempt_args)
-- Returns {state or false, counted, caller_blocked, allowed, locked_now, account, caller}
local blob = redis.call('GET', KEYS[1])
if not blob then
  return {false, 0}
end
local ok, st = pcall(cjson.decode, blob)
if not ok or type(st) ~= 'table' then
  return {blob, 0}
end
local function subject(value)
  return type(value) == 'string' and value:match('^[0-9a-z]+$') ~= nil
end
if st.call_sid ~= ARGV[1] or st.node ~= ARGV[2] or type(st.seq) ~= 'number'
    or st.seq ~= tonumber(ARGV[3]) or type(st.language) ~= 'string' or st.routed == true
    or type(st.customer_number) ~= 'string'
    or not subject(st._a) or not subject(st._c) then
  return {blob, 0}
end
local function key(template, value)
  return (template:gsub('%%s', value, 1))
end
local K = {
  key(ARGV[4], st._c), key(ARGV[5], st._c), KEYS[2], KEYS[3],
  key(ARGV[6], st._a), key(ARGV[7], st._a),
}
local r = attempt(K, {ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14]})
return {blob, 1, r[1], r[2], r[3], st._a, st._c}
"""


def load_and_count_script() -> str:
    """The lockout's own attempt (the same Lua as begin()) behind the state check above."""
    return attempt_function() + _MAIN


def sidecar(hasher: PinHasher, state: CallState) -> Sidecar:
    """The lockout subjects to store beside ``state`` (empty before a number is claimed)."""
    if state.customer_number is None:
        return {}
    caller = hasher.subject("caller", state.caller) if state.caller else ANONYMOUS_CALLER
    return {
        ACCOUNT_FIELD: hasher.subject("account", state.customer_number),
        CALLER_FIELD: caller,
    }


@dataclass(frozen=True)
class Counted:
    """A PIN submission counted while its state was loaded, and the subjects it counted."""

    attempt: Attempt
    account_key: str
    caller_key: str


class PinStepLoader:
    """Loads a call's state and, for a PIN submission the engine will verify, counts it."""

    def __init__(self, client: redis.Redis, calls: CallStore, lockout: Lockout) -> None:
        if not lockout.single_node:
            raise ValueError("PinStepLoader needs a single Redis (it names keys in Lua)")
        self._client = client
        self._calls = calls
        self._lockout = lockout
        self._script = client.register_script(load_and_count_script())

    def load(self, call_sid: str, node: str, seq: int) -> tuple[CallState | None, Counted | None]:
        """The stored state, and the counted attempt if this submission was counted.

        DependencyError when Redis fails (nothing was counted then, or the count stands:
        either way the caller is handed over as unavailable, never compared).
        """
        batch = Batch()
        keys = (self._calls.key(call_sid), *self._lockout.global_keys())
        args = (
            call_sid, node, seq, *self._lockout.key_templates(), *self._lockout.attempt_args()
        )  # fmt: skip
        batch.script(self._script, keys, args, what="PIN step load")
        (reply,) = batch.send(self._client, "PIN step load")
        state = self._calls.decode(call_sid, reply[0] or None)
        if not reply[1]:
            return state, None
        caller_blocked, allowed, locked_now, account, caller = reply[2:7]
        counted = Counted(
            attempt_of(caller_blocked, allowed, locked_now), text(account), text(caller)
        )
        return state, counted
