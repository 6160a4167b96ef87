-- Renews a slow handler's claim on the event `id`, if it is still `consumer`'s: XCLAIM with
-- JUSTID restarts its visibility timeout without counting a delivery.
-- KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] id.
-- Returns 1 when renewed, 0 when the event is no longer the consumer's.
local stream, group, consumer, id = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
if not redis.call('XPENDING', stream, group, id, id, 1, consumer)[1] then
  return 0
end
redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
return 1
