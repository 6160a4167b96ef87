-- Fixed window: one counter per window of the server clock, expiring when its window ends, so
-- the counter that exists is the current window's: an admitted call costs one INCRBY (and a
-- PEXPIREAT on the window's first call), as the classic INCR + EXPIRE counter, on aligned
-- windows and without counting denied calls.
-- KEYS[1]  counter: units admitted in the window it was created in; expires at that window's end
-- ARGV[1]  'take', or 'refund' to give back units taken earlier
-- ARGV[2]  limit (units per window), at most 2^40
-- ARGV[3]  window in microseconds, 1 to 2^50
-- ARGV[4]  cost (units), at most 2^40 + 1
-- ARGV[5]  'refund' only: the window number the take returned
-- Returns {allowed 0|1, units counted in the window (this call's included when allowed),
--          server time µs}: the caller derives the rest from its own limit, window and cost
--          (`ops::fixed_window_reply`); a refund returns 1. Out-of-range arguments are an error
--          raised before anything is written.
--
-- This is the hottest script of the library, so it is written for the server's time: no
-- helper closures, no number-to-string conversions on the way to a command (ARGV[4] goes to
-- INCRBY as sent), a three-integer reply.
--
-- The server treats a script's keys as of the millisecond it started, and TIME reads the clock
-- a few microseconds later: a call that starts in the last of them before a window ends is
-- counted in the ending window, where it began (and reports the next window's reset).
local key, cost = KEYS[1], ARGV[4]
local limit, window, units = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(cost)
if not (limit and window and units and limit >= 0 and limit <= 1099511627776 and limit % 1 == 0
    and window >= 1 and window <= 1125899906842624 and window % 1 == 0
    and units >= 0 and units <= 1099511627777 and units % 1 == 0) then
  return redis.error_reply('rate limit arguments out of range (limit 0..2^40, window 1..2^50 us, cost 0..2^40+1)')
end
local time = redis.call('TIME')
local now = time[1] * 1000000 + time[2]
if ARGV[1] == 'refund' then
  -- Only within the window the units were taken in; DECRBY keeps the counter's TTL.
  if math.floor(now / window) == tonumber(ARGV[5]) then
    local count = tonumber(redis.call('GET', key))
    if count and count > 0 then redis.call('DECRBY', key, math.min(count, units)) end
  end
  return 1
end
if units == 0 or units > limit then
  -- A peek, or a cost that never fits: read only.
  local count = tonumber(redis.call('GET', key)) or 0
  if units == 0 and count <= limit then return {1, count, now} end
  return {0, count, now}
end
local count = redis.call('INCRBY', key, cost)
if count == units then
  -- The window's first units (or a counter refunded to zero): it ends with the window. The
  -- millisecond is rounded up, so the deadline is never in the past.
  redis.call('PEXPIREAT', key, string.format('%.0f', math.ceil((math.floor(now / window) + 1) * window / 1000)))
end
if count > limit then
  -- Denied: give the units back (the counter existed before, with its TTL).
  redis.call('DECRBY', key, cost)
  return {0, count - units, now}
end
return {1, count, now}
