-- Add a session to its user's index (a sorted set of session key hashes by absolute end),
-- pruning ended ones; the index lives as long as its longest session.
-- KEYS[1]  the user's index
-- ARGV[1]  the session's hash; ARGV[2] its absolute end (ms since the Unix epoch), or with
--          ARGV[3] = 'in', its lifetime from now (the server's clock) in ms
-- Returns {1 when the hash was not indexed yet (else 0), the number of sessions indexed}.
local now = redis.call('TIME')
now = now[1] * 1000 + math.floor(now[2] / 1000)
local ends = ARGV[2]
if ARGV[3] == 'in' then ends = string.format('%d', now + tonumber(ends)) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local added = redis.call('ZADD', KEYS[1], ends, ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return {added, redis.call('ZCARD', KEYS[1])}
