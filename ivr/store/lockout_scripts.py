"""The lockout's Lua scripts composed into one script per round trip (single Redis).

Each check lives once, in its own ``lockout_*.lua`` file; these functions wrap files as
local Lua functions and call them in the order :class:`~ivr.store.lockout.Lockout` needs,
so the per-slot path (Redis Cluster) and the combined one run the very same logic.
"""

from __future__ import annotations

from ivr.store.redis_client import script_source


def combined_attempt_script() -> str:
    """The caller, global and account scripts as local functions of one script."""
    parts = lua_functions(
        ("caller", "lockout_caller.lua"),
        ("count_global", "lockout_global.lua"),
        ("account", "lockout_account.lua"),
    )
    main = """
-- KEYS: caller fails, caller block, global now, global previous, account fails, lock
-- ARGV: caller max, window, lock; global ttl; account max, window, lock
-- Returns {caller_blocked, allowed, locked_now}.
local blocked = caller({KEYS[1], KEYS[2]}, {ARGV[1], ARGV[2], ARGV[3]})
count_global({KEYS[3], KEYS[4]}, {'1', ARGV[4]})
if blocked == 1 then
  return {1, 0, 0}
end
local result = account({KEYS[5], KEYS[6]}, {ARGV[5], ARGV[6], ARGV[7]})
return {0, result[1], result[2]}
"""
    return "\n".join(parts) + main


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
