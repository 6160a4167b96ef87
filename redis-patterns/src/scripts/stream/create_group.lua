-- Creates a consumer group reading the stream from `start` ('0': every event it holds; '$':
-- only later ones), and the stream if missing (MKSTREAM: no TTL, bounded by its length cap).
-- KEYS[1] stream; ARGV[1] group, ARGV[2] start.
-- Returns 1 when created, 0 when the group existed.
local created = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM')
if type(created) == 'table' and created.err then
  if string.find(created.err, 'BUSYGROUP', 1, true) then
    return 0
  end
  return redis.error_reply(created.err)
end
return 1
