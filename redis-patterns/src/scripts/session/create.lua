-- Create a session unless its key exists (a new id never overwrites another session).
-- KEYS[1]  the session: a hash of d (data), v (version), u (user), c (created, ms since the
--          Unix epoch), e (absolute end, ms)
-- ARGV[1]  data; ARGV[2] user; ARGV[3] idle timeout (ms); ARGV[4] absolute lifetime (ms);
-- ARGV[5]  optional: created (ms), and ARGV[6] absolute end (ms), kept from the session a
--          rotation replaces; otherwise both start now (the server's clock)
-- Returns {1, created, end} when created, {0} when the key exists.
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
local created = tonumber(ARGV[5]) or now
local ends = tonumber(ARGV[6]) or now + tonumber(ARGV[4])
local ttl = math.min(tonumber(ARGV[3]), ends - now)
if ttl <= 0 then return {0} end
-- Numbers go to Redis as integers written by string.format: a Lua number is a double, which
-- Redis would format with '%.17g', the slowest part of a short script.
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', '1', 'u', ARGV[2],
  'c', string.format('%d', created), 'e', string.format('%d', ends))
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return {1, created, ends}
