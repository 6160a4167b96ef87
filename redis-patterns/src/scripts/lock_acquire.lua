-- Take a lock and issue its fencing token, atomically.
-- KEYS[1]  lock key
-- KEYS[2]  fencing counter key (same hash tag as KEYS[1]); never expires, so tokens keep
--          increasing for the lifetime of the data set
-- ARGV[1]  owner token (random, 128 bits)
-- ARGV[2]  lease in milliseconds
-- Returns {1, fencing_token} when acquired, {0, remaining_lease_ms_of_the_holder} when not.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
