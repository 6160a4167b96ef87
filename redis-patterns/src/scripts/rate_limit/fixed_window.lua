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
-- Returns {allowed 0|1, remaining, retry_after µs (-1: never), reset_after µs, window number,
--          server time µs}; a refund returns 1. Out-of-range arguments are an error raised
--          before anything is written.
--
-- The server treats a script's keys as of the millisecond it started, and TIME reads the clock
-- a few microseconds later: a call that starts in the last of them before a window ends is
-- counted in the ending window, where it began (and reports the next window's reset).
local function whole(x, lo, hi) return x ~= nil and x >= lo and x <= hi and x == math.floor(x) end
local key, limit, window, cost = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not (whole(limit, 0, 2^40) and whole(window, 1, 2^50) and whole(cost, 0, 2^40 + 1)) then
  return redis.error_reply('rate limit arguments out of range (limit 0..2^40, window 1..2^50 us, cost 0..2^40+1)')
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local current = math.floor(now / window)
if ARGV[1] == 'refund' then
  -- Only within the window the units were taken in; DECRBY keeps the counter's TTL.
  if current == tonumber(ARGV[5]) then
    local count = tonumber(redis.call('GET', key))
    if count and count > 0 then redis.call('DECRBY', key, math.min(count, cost)) end
  end
  return 1
end
local reset_after = (current + 1) * window - now
if cost == 0 or cost > limit then
  -- A peek, or a cost that never fits: read only.
  local count = tonumber(redis.call('GET', key)) or 0
  local remaining = math.max(0, limit - count)
  if cost > limit then return {0, remaining, -1, reset_after, current, now} end
  if count > limit then return {0, 0, reset_after, reset_after, current, now} end
  return {1, remaining, 0, reset_after, current, now}
end
local count = redis.call('INCRBY', key, cost)
if count == cost then
  -- The window's first units (or a counter refunded to zero): it ends with the window. The
  -- millisecond is rounded up, so the deadline is never in the past.
  redis.call('PEXPIREAT', key, string.format('%.0f', math.ceil((current + 1) * window / 1000)))
end
if count > limit then
  -- Denied: give the units back (the counter existed before, with its TTL).
  redis.call('DECRBY', key, cost)
  count = count - cost
  return {0, math.max(0, limit - count), reset_after, reset_after, current, now}
end
return {1, limit - count, 0, reset_after, current, now}
