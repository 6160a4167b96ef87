-- Remove a member from a board and its times.
-- KEYS[1]  the board; KEYS[2] its times
-- ARGV[1]  member
-- Returns 1 when the member was on the board, else 0.
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
