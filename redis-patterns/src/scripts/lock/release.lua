-- Release a lock only if it is still held by the given owner (compare-and-delete).
-- KEYS[1]  lock key
-- KEYS[2]  optional: the waiters' mark (scripts/lock/acquire.lua), rewritten if it exists so
--          that its trackers hear the release; absent for the stampede lock, whose waiters
--          watch the value instead
-- ARGV[1]  owner token
-- Returns 1 when released, 0 when the lock had expired or belongs to someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if KEYS[2] then redis.call('SET', KEYS[2], '1', 'XX', 'KEEPTTL') end
  return 1
end
return 0
