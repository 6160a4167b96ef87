-- Read a session and slide its expiry: idle timeout from now, never past its absolute end.
-- KEYS[1]  the session (see create.lua)
-- ARGV[1]  idle timeout (ms); ARGV[2] '1' to return the data, '0' to only slide (touch)
-- Returns false when there is no live session, else {data or '', version, user, created, end}
-- (numbers as the hash holds them: formatting numbers costs a script more than the reply).
local s = redis.call('HMGET', KEYS[1], 'd', 'v', 'u', 'c', 'e')
if not s[2] then return false end
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
local ttl = math.min(tonumber(ARGV[1]), tonumber(s[5]) - now)
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return false
end
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
if ARGV[2] == '0' then s[1] = '' end
return s
