-- Release a lock only if it is still held by the given owner (compare-and-delete).
-- KEYS[1]  lock key: the owner token, or the owner token and '*' if someone waited for it
--          (scripts/lock/acquire.lua)
-- KEYS[2]  optional: the waiters' mark, rewritten if someone waited, so that its trackers
--          hear the release; absent for the stampede lock, whose waiters watch the value
-- ARGV[1]  owner token
-- Returns 1 when released, 0 when the lock had expired or belongs to someone else.
local value = redis.call('GET', KEYS[1])
if value == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if value == ARGV[1] .. '*' then
  redis.call('DEL', KEYS[1])
  if KEYS[2] then redis.call('SET', KEYS[2], '1', 'XX', 'KEEPTTL') end
  return 1
end
return 0
