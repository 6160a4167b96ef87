-- Read a cached value; unless it is fresh, try to take the stampede lock in the same round trip.
-- KEYS[1]  value key
-- KEYS[2]  lock key (same hash tag as KEYS[1])
-- ARGV[1]  owner token (random, 128 bits)
-- ARGV[2]  lock TTL in milliseconds
-- ARGV[3]  the caller's Unix time in ms, or 0 when the function keeps no stale entries (then a
--          stored value is always served). An envelope (first byte 0xFE) whose expiry (bytes
--          9..16, u64 LE) is not after it is stale.
-- Returns {1, value} when a usable value exists; {2} or {2, stale value} when this caller now
-- holds the lock; {3} or {3, stale value} when another caller holds it.
local value = redis.call('GET', KEYS[1])
if value then
  local now = tonumber(ARGV[3])
  if now == 0 or string.byte(value, 1) ~= 254 or string.len(value) < 16 then
    return {1, value}
  end
  local b1, b2, b3, b4, b5, b6, b7, b8 = string.byte(value, 9, 16)
  local expires = ((((((b8 * 256 + b7) * 256 + b6) * 256 + b5) * 256 + b4) * 256 + b3) * 256 + b2) * 256 + b1
  if expires > now then
    return {1, value}
  end
end
local state = 3
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  state = 2
end
if value then
  return {state, value}
end
return {state}
