-- Adds a job: ready now, or due after `delay` ms (by the server's clock).
-- ARGV[1] id, ARGV[2] payload, ARGV[3] delay ms (0: now).
-- Returns 1 when added, 0 when a job of this id exists.
local id, delay = ARGV[1], tonumber(ARGV[3])
if redis.call('HSETNX', jobs, id, ARGV[2]) == 0 then
  return 0
end
redis.call('HSET', jobs, id .. ':a', 0)
if delay > 0 then
  redis.call('ZADD', delayed, now_ms() + delay, id)
else
  redis.call('RPUSH', ready, id)
end
wake_one()
return 1
