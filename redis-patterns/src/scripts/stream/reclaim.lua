-- Claims up to `count` events of the group idle for `min_idle` ms or more (their consumer
-- died, or ran past the visibility timeout) for `consumer`, scanning the pending entries from
-- `cursor` (XAUTOCLAIM). An event already delivered `max` times goes to the dead-letter stream
-- instead. XAUTOCLAIM drops the entries of events trimmed from the stream.
-- KEYS[1] stream, KEYS[2] dead letters; ARGV[1] group, ARGV[2] consumer, ARGV[3] min_idle,
-- ARGV[4] cursor, ARGV[5] count, ARGV[6] max deliveries, ARGV[7] dead-letter cap.
-- Returns {next cursor, dead-lettered, id1, payload1, deliveries1, id2, ...}.
local stream, dead, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local max = tonumber(ARGV[6])
local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, ARGV[3], ARGV[4],
  'COUNT', ARGV[5])
local out = {claimed[1], 0}
for _, entry in ipairs(claimed[2]) do
  local id, fields = entry[1], entry[2]
  local pending = redis.call('XPENDING', stream, group, id, id, 1)[1]
  local deliveries = pending and pending[4] or 1
  if deliveries > max then
    dead_letter(stream, dead, group, id, fields, deliveries - 1, consumer,
      'its consumer stopped during its last delivery (it crashed, or the handler ran past ' ..
      'the visibility timeout)', ARGV[7])
    out[2] = out[2] + 1
  else
    local payload = false
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then
        payload = fields[i + 1]
      end
    end
    out[#out + 1] = id
    out[#out + 1] = payload
    out[#out + 1] = deliveries
  end
end
return out
