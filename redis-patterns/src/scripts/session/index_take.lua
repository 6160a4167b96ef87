-- Take sessions out of a user's index: the given one (logout), or all of them (log out
-- everywhere: read and removed in one step, so a session indexed meanwhile stays indexed).
-- KEYS[1]  the user's index
-- ARGV[1]  optional: one session's hash
-- Returns the hashes removed.
if ARGV[1] then
  return {redis.call('ZREM', KEYS[1], ARGV[1]) == 1 and ARGV[1] or nil}
end
local all = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return all
