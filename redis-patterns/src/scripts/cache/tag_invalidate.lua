-- Invalidate every entry carrying a cache tag: give the tag a new version, keeping its TTL
-- (which already outlives every entry stamped with the old version).
-- KEYS[1]  tag key
-- ARGV[1]  the new random version
-- Returns 1 when the tag existed, 0 when it did not (then no live entry carries it).
if redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL') then
  return 1
end
return 0
