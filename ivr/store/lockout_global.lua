-- Per-minute count of PIN submissions that were not (yet) known to be right, over all
-- accounts: the signal for PIN spraying from rotating numbers.
-- KEYS[1] this minute's bucket, KEYS[2] the previous minute's (same {hash tag})
-- ARGV[1] +1 (counted) or -1 (taken back), ARGV[2] bucket TTL in seconds
if tonumber(ARGV[1]) > 0 then
  local count = redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return count
end
-- A success takes its failure back from this minute, or from the previous one when the
-- minute turned between the count and the take-back; never below zero.
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then
    return redis.call('DECR', key)
  end
end
return 0
