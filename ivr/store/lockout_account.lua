-- Count one PIN submission against an account, before the PIN is compared.
-- KEYS[1] failure counter, KEYS[2] lock flag (same {hash tag}, so one cluster slot)
-- ARGV[1] account_max_failures, ARGV[2] account_window_s, ARGV[3] account_lock_s
-- Returns {allowed, locked_now}: allowed = 1 if the PIN may be compared; locked_now = 1
-- if this submission locked the account (the holder is notified once, for this one).
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {0, 0}
end
local max = tonumber(ARGV[1])
local count = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if count < max then
  return {1, 0}
end
-- The max-th submission locks pre-emptively, so parallel calls are refused while it is
-- still being compared; if its PIN is right, the reset (Lockout.settle) lifts it. The
-- counter expires with the lock: once the lock ends the account starts afresh.
redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if count == max then
  return {1, 1}
end
-- Only reachable if account_max_failures was lowered below a live count.
return {0, 1}
