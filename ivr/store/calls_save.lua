-- Compare-and-set of a call's JSON state: write only if the stored seq is the expected
-- one, so a replayed or out-of-order webhook cannot overwrite a newer step.
-- KEYS[1] state key, KEYS[2] its status key (same {CallSid} hash tag: one cluster slot)
-- ARGV[1] new JSON, ARGV[2] expected seq, ARGV[3] TTL in seconds
-- Returns {1 if written else 0, Twilio's last CallStatus or false}: the status rides
-- along so that whoever publishes the change needs no second round trip for it.
local status = redis.call('GET', KEYS[2])
local blob = redis.call('GET', KEYS[1])
if not blob then
  return {0, status}
end
local ok, state = pcall(cjson.decode, blob)
if not ok or type(state) ~= 'table' or state.seq ~= tonumber(ARGV[2]) then
  return {0, status}
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return {1, status}
