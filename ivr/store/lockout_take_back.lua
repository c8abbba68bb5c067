-- Take back one failure counted before the comparison: the caller's, once its PIN proved
-- right; or the account's, when the caller's block refused the submission (the counts
-- run side by side, neither script sees the other's answer, and a blocked number must
-- not wear an account down).
-- KEYS[1] failure counter, KEYS[2] lock or block flag (same {hash tag})
-- ARGV[1] '1' if the flag may go (it is below the limit again; for an account: only if
-- this submission set it), ARGV[2] the limit (max failures)
-- Returns the remaining failure count.
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 1 then
  count = redis.call('DECR', KEYS[1]) -- DECR keeps the key's TTL
elseif count == 1 then
  redis.call('DEL', KEYS[1])
  count = 0
end
if ARGV[1] == '1' and count < tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[2])
end
return count
