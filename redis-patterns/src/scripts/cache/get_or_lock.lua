-- Read a cached value; on a miss, try to take the stampede lock in the same round trip.
-- KEYS[1]  value key
-- KEYS[2]  lock key (same hash tag as KEYS[1])
-- ARGV[1]  owner token (random, 128 bits)
-- ARGV[2]  lock TTL in milliseconds
-- Returns {1, value} when the value exists, {2} when this caller now holds the lock,
-- {3} when another caller holds it.
local value = redis.call('GET', KEYS[1])
if value then
  return {1, value}
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {2}
end
return {3}
