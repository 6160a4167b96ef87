-- Renews the lease of the job `id` for `lease` ms from now, if the worker `owner` holds it.
-- ARGV[1] id, ARGV[2] owner, ARGV[3] lease ms.
-- Returns 1 when renewed, 0 when the lease was lost.
local id = ARGV[1]
if redis.call('HGET', jobs, id .. ':o') ~= ARGV[2] then
  return 0
end
redis.call('ZADD', leases, 'XX', now_ms() + tonumber(ARGV[3]), id)
return 1
