-- Delivers the failed event `id` to `consumer` again, if it is still that consumer's:
-- XCLAIM counts the delivery and restarts its visibility timeout.
-- KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] id.
-- Returns {} when the event is no longer the consumer's, {0} when it was trimmed from the
-- stream (and is acknowledged), else {deliveries, payload} (payload false without a field d).
local stream, group, consumer, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local pending = redis.call('XPENDING', stream, group, id, id, 1, consumer)[1]
if not pending then
  return {}
end
local claimed = redis.call('XCLAIM', stream, group, consumer, 0, id)[1]
if not claimed or not claimed[2] then
  redis.call('XACK', stream, group, id)
  return {0}
end
local payload = false
for i = 1, #claimed[2], 2 do
  if claimed[2][i] == 'd' then
    payload = claimed[2][i + 1]
  end
end
return {pending[4] + 1, payload}
