-- A handler failed on the event `id`, still pending for `consumer`: after `max` deliveries
-- the event goes to the dead-letter stream with the error; before, it stays pending for a
-- retry.
-- KEYS[1] stream, KEYS[2] dead letters; ARGV[1] group, ARGV[2] consumer, ARGV[3] id,
-- ARGV[4] error, ARGV[5] max deliveries, ARGV[6] dead-letter cap.
-- Returns -1 when the event is no longer the consumer's (reclaimed by another, or
-- acknowledged), 0 when it was dead-lettered, else its deliveries so far.
local stream, dead, group, consumer, id = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]
local pending = redis.call('XPENDING', stream, group, id, id, 1, consumer)[1]
if not pending then
  return -1
end
local deliveries = pending[4]
if deliveries < tonumber(ARGV[5]) then
  return deliveries
end
local entry = redis.call('XRANGE', stream, id, id)[1]
dead_letter(stream, dead, group, id, entry and entry[2], deliveries, consumer, ARGV[4], ARGV[6])
return 0
