-- Sliding window counter: the count of the current fixed window plus the previous window's
-- count weighted by how much of it still overlaps the sliding window. Approximate, O(1). The
-- hash expires when the window after the one it was written in ends, a deadline set by each
-- window's first call: the other calls of the window cost one HINCRBY.
-- KEYS[1]  hash {w = window number, n = units in window w, p = units in window w - 1}
-- ARGV[1]  'take', or 'refund' to give back units taken earlier
-- ARGV[2]  limit (units per window), at most 2^40
-- ARGV[3]  window in microseconds, 1 to 2^50
-- ARGV[4]  cost (units), at most 2^40 + 1
-- ARGV[5]  'refund' only: the window number the take returned
-- Returns {allowed 0|1, remaining, retry_after µs (-1: never), reset_after µs,
--          window number, server time µs}; a refund returns 1. Out-of-range arguments are an
--          error raised before anything is written.
local function fmt(x) return string.format('%.0f', x) end
local key, limit, window, cost = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not (limit and window and cost and limit >= 0 and limit <= 1099511627776 and limit % 1 == 0
    and window >= 1 and window <= 1125899906842624 and window % 1 == 0
    and cost >= 0 and cost <= 1099511627777 and cost % 1 == 0) then
  return redis.error_reply('rate limit arguments out of range (limit 0..2^40, window 1..2^50 us, cost 0..2^40+1)')
end
local stored = redis.call('HMGET', key, 'w', 'n', 'p')
local stored_window = tonumber(stored[1])
local stored_count, stored_previous = tonumber(stored[2]) or 0, tonumber(stored[3]) or 0
if ARGV[1] == 'refund' then
  local taken = tonumber(ARGV[5])
  if stored_window == taken then
    redis.call('HSET', key, 'n', fmt(math.max(0, stored_count - cost)))
  elseif stored_window == taken + 1 then
    redis.call('HSET', key, 'p', fmt(math.max(0, stored_previous - cost)))
  end
  return 1
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local current = math.floor(now / window)
local elapsed = now - current * window
local count, previous = 0, 0
if stored_window == current then
  count, previous = stored_count, stored_previous
elseif stored_window == current - 1 then
  previous = stored_count
end
local weight = (window - elapsed) / window
local allowed, retry_after = 0, 0
if previous * weight + count + cost <= limit then
  allowed = 1
  count = count + cost
  if stored_window == current then
    -- The window's state and deadline were written by its first call: add to its count.
    if cost > 0 then redis.call('HINCRBY', key, 'n', cost) end
  else
    -- A new window: the old current becomes the previous, and the hash lives until the
    -- next window ends (rounded up to the millisecond, so never in the past).
    redis.call('HSET', key, 'w', fmt(current), 'n', fmt(count), 'p', fmt(previous))
    redis.call('PEXPIREAT', key, fmt(math.ceil((current + 2) * window / 1000)))
  end
elseif cost > limit then
  retry_after = -1
else
  local room = limit - cost - count
  if room >= 0 then
    -- Within this window, once enough of the previous one has slid out.
    retry_after = math.ceil(window - elapsed - room * window / previous)
  else
    -- In the next window, once enough of this one has slid out.
    retry_after = math.ceil(window - elapsed + math.max(0, window - (limit - cost) * window / count))
  end
end
local reset_after = 0
if count > 0 then
  reset_after = 2 * window - elapsed
elseif previous > 0 then
  reset_after = window - elapsed
end
local remaining = math.max(0, math.floor(limit - previous * weight - count))
return {allowed, remaining, retry_after, reset_after, current, now}
