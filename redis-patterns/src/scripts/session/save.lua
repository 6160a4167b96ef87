-- Write a session's data if nobody wrote it since it was read (optimistic version check),
-- and slide its expiry.
-- KEYS[1]  the session (see create.lua)
-- ARGV[1]  data; ARGV[2] the version read; ARGV[3] idle timeout (ms)
-- Returns {1, new version} when saved, {0} when the session is gone (expired, deleted,
-- rotated: a save never brings it back), {-1, current version} on a conflict.
local s = redis.call('HMGET', KEYS[1], 'v', 'e')
if not s[1] then return {0} end
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
local ttl = math.min(tonumber(ARGV[3]), tonumber(s[2]) - now)
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return {0}
end
if s[1] ~= ARGV[2] then return {-1, tonumber(s[1])} end
local version = tonumber(s[1]) + 1
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', string.format('%d', version))
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return {1, version}
