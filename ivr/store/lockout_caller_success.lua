-- Take back the failure begin() counted for a caller whose PIN turned out right.
-- KEYS[1] failure counter, KEYS[2] block flag; ARGV[1] caller_max_failures
-- Returns the caller's remaining failure count.
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 1 then
  count = redis.call('DECR', KEYS[1]) -- DECR keeps the key's TTL
elseif count == 1 then
  redis.call('DEL', KEYS[1])
  count = 0
end
-- The block this very attempt may have set pre-emptively goes once the real failures
-- are below the limit again.
if count < tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[2])
end
return count
