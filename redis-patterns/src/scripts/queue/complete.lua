-- The job `id` succeeded: forget it, if the worker `owner` still holds its lease.
-- ARGV[1] id, ARGV[2] owner.
-- Returns 1 when completed, 0 when the lease was lost (the job went back to the queue).
local id = ARGV[1]
if redis.call('HGET', jobs, id .. ':o') ~= ARGV[2] then
  return 0
end
redis.call('ZREM', leases, id)
redis.call('HDEL', jobs, id, id .. ':a', id .. ':o', id .. ':e')
return 1
