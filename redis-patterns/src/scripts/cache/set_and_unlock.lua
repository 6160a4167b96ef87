-- Store a computed value and release the stampede lock, if still ours, atomically.
-- KEYS[1]  value key
-- KEYS[2]  lock key (same hash tag as KEYS[1])
-- ARGV[1]  value
-- ARGV[2]  value TTL in milliseconds
-- ARGV[3]  owner token of the lock
-- Returns 1 when the lock was ours and is released, 0 otherwise (the value is stored anyway).
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
