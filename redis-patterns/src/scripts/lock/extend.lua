-- Extend a lock's lease only if it is still held by the given owner (compare-and-PEXPIRE).
-- KEYS[1]  lock key: the owner token, followed by '*' once someone waited
-- ARGV[1]  owner token
-- ARGV[2]  new lease in milliseconds
-- Returns 1 when extended, 0 when the lock expired or belongs to someone else.
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] or value == ARGV[1] .. '*' then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
