-- The job `id` failed with `error` in the worker `owner`: after `max` attempts it is buried,
-- else it is due again after `backoff` ms. Only while the worker holds its lease.
-- ARGV[1] id, ARGV[2] owner, ARGV[3] error, ARGV[4] max attempts, ARGV[5] backoff ms,
-- ARGV[6] dead cap.
-- Returns 0 when the lease was lost, 1 when it will be retried, 2 when it was buried.
local id = ARGV[1]
if redis.call('HGET', jobs, id .. ':o') ~= ARGV[2] then
  return 0
end
local attempts = tonumber(redis.call('HGET', jobs, id .. ':a') or '0')
if attempts >= tonumber(ARGV[4]) then
  bury(id, attempts, ARGV[3], tonumber(ARGV[6]), now_ms())
  return 2
end
redis.call('ZREM', leases, id)
redis.call('HDEL', jobs, id .. ':o')
redis.call('HSET', jobs, id .. ':e', ARGV[3])
redis.call('ZADD', delayed, now_ms() + tonumber(ARGV[5]), id)
return 1
