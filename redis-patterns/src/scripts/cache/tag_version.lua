-- The current version of a cache tag, created if missing, and kept alive for the entries about
-- to be stamped with it.
-- KEYS[1]  tag key
-- ARGV[1]  a new random version, used when the tag has none
-- ARGV[2]  the longest TTL of an entry carrying the tag, in milliseconds
-- The tag lives at least ARGV[2] ms more: when less is left, its TTL becomes twice that, so
-- that a tag's TTL moves (and its change is broadcast to near tiers) once per about one entry
-- lifetime, not on every write.
-- Returns the version.
local version = redis.call('GET', KEYS[1])
local ttl = tonumber(ARGV[2])
if not version then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', 2 * ttl)
  return ARGV[1]
end
local left = redis.call('PTTL', KEYS[1])
if left >= 0 and left < ttl then
  redis.call('PEXPIRE', KEYS[1], 2 * ttl)
end
return version
