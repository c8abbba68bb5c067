-- Count one PIN submission against a caller number, before the PIN is compared.
-- KEYS[1] failure counter, KEYS[2] block flag (same {hash tag}, so one cluster slot)
-- ARGV[1] caller_max_failures, ARGV[2] caller_window_s, ARGV[3] caller_lock_s
-- Returns 1 when the caller is blocked (the submission must not be evaluated), else 0.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 1
end
local max = tonumber(ARGV[1])
local count = redis.call('INCR', KEYS[1])
-- The window starts with the first failure; checking PTTL instead of count == 1 also
-- repairs a counter that somehow lost its TTL, so no key can live forever.
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if count >= max then
  -- Block pre-emptively: this attempt is still evaluated, the next ones are not. The
  -- counter expires with the block so the number starts afresh once the block ends.
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
if count > max then
  return 1
end
return 0
