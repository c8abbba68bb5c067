-- Clear an account's failure counter and lock (right PIN, or an operator's unlock).
-- KEYS[1] failure counter, KEYS[2] lock flag. Returns how many of them existed.
return redis.call('DEL', KEYS[1], KEYS[2])
