"""The lockout's Lua scripts composed into one script per round trip (single Redis).

Each check lives once, in its own ``lockout_*.lua`` file; these functions wrap files as
local Lua functions and call them in the order :class:`~ivr.store.lockout.Lockout` needs,
so the per-slot path (Redis Cluster) and the combined one run the very same logic.
"""

from __future__ import annotations

from ivr.store.redis_client import script_source

_ATTEMPT = """
-- K: caller fails, caller block, global now, global previous, account fails, lock
-- A: caller max, window, lock; global ttl; account max, window, lock
-- Returns {caller_blocked, allowed, locked_now}.
local function attempt(K, A)
  local blocked = caller({K[1], K[2]}, {A[1], A[2], A[3]})
  count_global({K[3], K[4]}, {'1', A[4]})
  if blocked == 1 then
    return {1, 0, 0}
  end
  local result = account({K[5], K[6]}, {A[5], A[6], A[7]})
  return {0, result[1], result[2]}
end
"""


def attempt_function() -> str:
    """Lua defining ``attempt(K, A)``: caller, global and account counts, in that order."""
    parts = lua_functions(
        ("caller", "lockout_caller.lua"),
        ("count_global", "lockout_global.lua"),
        ("account", "lockout_account.lua"),
    )
    return "\n".join(parts) + _ATTEMPT


def combined_attempt_script() -> str:
    """The attempt as one script: KEYS and ARGV as ``attempt`` takes them."""
    return attempt_function() + "\nreturn attempt(KEYS, ARGV)\n"


def combined_success_script() -> str:
    """The account reset, caller success and global take-back as one script."""
    parts = lua_functions(
        ("reset_account", "lockout_account_reset.lua"),
        ("caller_success", "lockout_caller_success.lua"),
        ("count_global", "lockout_global.lua"),
    )
    main = """
-- KEYS: account fails, lock, caller fails, caller block, global now, global previous
-- ARGV: caller max. Returns the caller's remaining failure count.
reset_account({KEYS[1], KEYS[2]}, {})
count_global({KEYS[5], KEYS[6]}, {'-1', '0'})
return caller_success({KEYS[3], KEYS[4]}, {ARGV[1]})
"""
    return "\n".join(parts) + main


def lua_functions(*scripts: tuple[str, str]) -> list[str]:
    """Each ``(name, file)`` script as a local Lua function of that name.

    The file's top-level ``KEYS``/``ARGV`` become the function's parameters, so the logic
    exists once, in its own file, whichever way it is run.
    """
    return [
        f"local function {name}(KEYS, ARGV)\n{script_source(file)}\nend" for name, file in scripts
    ]
