-- Take a lock and issue its fencing token, atomically.
-- KEYS[1]  lock key
-- KEYS[2]  fencing key (same hash tag as KEYS[1]): the last token issued for this lock name
-- KEYS[3]  waiters' mark (same hash tag): exists while someone waits for the lock; the release
--          script rewrites it, and that write is what wakes the waiters (their client tracks
--          the mark, so it hears releases and not acquisitions)
-- ARGV[1]  owner token (random, 128 bits)
-- ARGV[2]  lease in milliseconds
-- Returns {1, fencing_token} when acquired, {0, remaining_lease_ms_of_the_holder, marked} when
-- not, where marked is 1 if the waiters' mark is in place (0: it could not be written, say
-- under maxmemory, and the caller should poll).
--
-- A token is the greater of (last token + 1) and the server's clock in microseconds. So tokens
-- keep increasing even when the fencing key is gone (expired, evicted, flushed, or the server
-- restarted without persistence): the clock has moved past every token issued before, since
-- no lock name is taken more than once per microsecond. That is why the fencing key can
-- expire with the lease instead of living forever.
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local time = redis.call('TIME')
  local now_us = tonumber(time[1]) * 1000000 + tonumber(time[2])
  -- Usually the clock is ahead of the last token: one SET ... GET stores it and reads the
  -- last one. Only when it is not (two grants in a microsecond, a clock stepped back) is the
  -- token the last one + 1, stored by a second SET.
  local token = now_us
  local last = tonumber(redis.call('SET', KEYS[2], string.format('%d', token), 'PX', ARGV[2], 'GET'))
  if last and last >= token then
    token = last + 1
    redis.call('SET', KEYS[2], string.format('%d', token), 'PX', ARGV[2])
  end
  return {1, token}
end
-- Refused: mark the lock as awaited, for as long as this caller's own lease would last. Only
-- the first waiter writes (NX), so waiting adds no write per attempt; an expired mark is a
-- change its trackers hear too, and they mark it again.
local marked = 1
if redis.call('EXISTS', KEYS[3]) == 0 then
  local set = redis.pcall('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2])
  if type(set) == 'table' and set.err then marked = 0 end
end
return {0, redis.call('PTTL', KEYS[1]), marked}
