-- Claims the next ready job for the worker `owner` with a lease of `lease` ms, after making
-- due delayed jobs ready and taking back jobs whose lease ran out (their worker stopped):
-- those that had their `max` attempts are buried with why, the others are ready again first.
-- ARGV[1] owner, ARGV[2] lease ms, ARGV[3] max attempts, ARGV[4] dead cap.
-- Returns {id, payload, attempts} or {false, ms until the next delayed job is due or lease
-- runs out (-1: none)}.
local owner, lease, max, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
for _, id in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', delayed, id)
  redis.call('RPUSH', ready, id)
end
-- Latest first, each to the front of the ready list: the first to expire is claimed first.
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 100)
for i = #expired, 1, -1 do
  local id = expired[i]
  local attempts = tonumber(redis.call('HGET', jobs, id .. ':a') or '0')
  if attempts >= max then
    bury(id, attempts, 'its worker stopped during its last attempt (it crashed, or the ' ..
      'handler ran past the visibility timeout)', cap, now)
  else
    redis.call('ZREM', leases, id)
    redis.call('HDEL', jobs, id .. ':o')
    redis.call('LPUSH', ready, id)
  end
end
while true do
  local id = redis.call('LPOP', ready)
  if not id then
    break
  end
  local payload = redis.call('HGET', jobs, id)
  if payload then
    local attempts = redis.call('HINCRBY', jobs, id .. ':a', 1)
    redis.call('HSET', jobs, id .. ':o', owner)
    redis.call('ZADD', leases, now + lease, id)
    return {id, payload, attempts}
  end
end
local next = -1
for _, set in ipairs({delayed, leases}) do
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')[2]
  if first then
    local wait = math.max(tonumber(first) - now, 0)
    if next < 0 or wait < next then
      next = wait
    end
  end
end
return {false, next}
