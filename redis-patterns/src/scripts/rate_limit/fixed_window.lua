-- Fixed window: one counter per window of the server clock, expiring with its window.
-- KEYS[1]  hash {w = window number, n = units admitted in window w}
-- ARGV[1]  'take', or 'refund' to give back units taken earlier
-- ARGV[2]  limit (units per window), at most 2^40
-- ARGV[3]  window in microseconds, 1 to 2^50
-- ARGV[4]  cost (units), at most 2^40 + 1
-- ARGV[5]  'refund' only: the window number the take returned
-- Returns {allowed 0|1, limit, remaining, retry_after µs (-1: never), reset_after µs,
--          window number, server time µs}; a refund returns 1. Out-of-range arguments are an
--          error raised before anything is written.
local function fmt(x) return string.format('%.0f', x) end
local function whole(x, lo, hi) return x ~= nil and x >= lo and x <= hi and x == math.floor(x) end
local limit, window, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not (whole(limit, 0, 2^40) and whole(window, 1, 2^50) and whole(cost, 0, 2^40 + 1)) then
  return redis.error_reply('rate limit arguments out of range (limit 0..2^40, window 1..2^50 us, cost 0..2^40+1)')
end
local stored = redis.call('HMGET', KEYS[1], 'w', 'n')
local stored_window, stored_count = tonumber(stored[1]), tonumber(stored[2]) or 0
if ARGV[1] == 'refund' then
  if stored_window == tonumber(ARGV[5]) then
    redis.call('HSET', KEYS[1], 'n', fmt(math.max(0, stored_count - cost)))
  end
  return 1
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local current = math.floor(now / window)
local count = 0
if stored_window == current then count = stored_count end
local reset_after = (current + 1) * window - now
local allowed, retry_after = 0, 0
if count + cost <= limit then
  allowed = 1
  count = count + cost
  redis.call('HSET', KEYS[1], 'w', fmt(current), 'n', fmt(count))
  redis.call('PEXPIRE', KEYS[1], fmt(math.ceil(reset_after / 1000)))
elseif cost > limit then
  retry_after = -1
else
  retry_after = reset_after
end
return {allowed, limit, math.max(0, limit - count), retry_after, reset_after, current, now}
