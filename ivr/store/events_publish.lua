-- Publish one board event: append it to the stream and keep the board index current,
-- atomically, so a reader never sees the index and the stream disagree.
-- KEYS[1] stream   KEYS[2] index (zset call_sid -> start time)
-- KEYS[3] latest (hash call_sid -> "<stream id> <payload>")   KEYS[4] ended (zset call_sid -> end time)
-- ARGV[1] call_sid  ARGV[2] payload JSON  ARGV[3] start time (epoch s)  ARGV[4] "1" if the call ended
-- ARGV[5] now (epoch s)  ARGV[6] TTL s  ARGV[7] stream max length  ARGV[8] board max calls
-- Returns the new stream id, or false when a late change of an ended call was dropped.
local sid = ARGV[1]
local ended = ARGV[4] == '1'
local now = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local board_max = tonumber(ARGV[8])
if not ended and redis.call('ZSCORE', KEYS[4], sid) then
  -- A step saved after the hang-up was reported must not bring the call back.
  return false
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[7], '*', 'call', sid, 'data', ARGV[2])
if ended then
  redis.call('ZREM', KEYS[2], sid)
  redis.call('HDEL', KEYS[3], sid)
  redis.call('ZADD', KEYS[4], now, sid)
else
  redis.call('ZADD', KEYS[2], ARGV[3], sid)
  redis.call('HSET', KEYS[3], sid, id .. ' ' .. ARGV[2])
end
-- Forget calls older than the TTL (their state has expired too) and beyond the cap.
local cutoff = '(' .. (now - ttl)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, -(board_max + 1))) do
  table.insert(gone, old)
end
for _, old in ipairs(gone) do
  redis.call('ZREM', KEYS[2], old)
  redis.call('HDEL', KEYS[3], old)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', cutoff)
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(board_max * 50 + 1))
for i = 1, 4 do
  redis.call('EXPIRE', KEYS[i], ttl)
end
return id
