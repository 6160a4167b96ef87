-- Sliding window log: every admitted unit is a member of a sorted set scored by its admission
-- time, so the window (now - window, now] is counted exactly. Members are `nonce:i` with a
-- random nonce per call, so units admitted in the same microsecond are all kept.
-- KEYS[1]  sorted set of admitted units
-- ARGV[1]  'take', or 'refund' to remove the units a take added
-- ARGV[2]  limit (units per window)
-- ARGV[3]  window in microseconds
-- ARGV[4]  cost (units)
-- ARGV[5]  nonce of this call (64-bit random, decimal)
-- Returns {allowed 0|1, limit, remaining, retry_after µs (-1: never), reset_after µs, 0,
--          server time µs}; a refund returns 1.
local function fmt(x) return string.format('%.0f', x) end
local key, window, cost, nonce = KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
if ARGV[1] == 'refund' then
  for i = 1, cost do
    redis.call('ZREM', key, nonce .. ':' .. i)
  end
  return 1
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - window))
local count = redis.call('ZCARD', key)
local allowed, retry_after = 0, 0
if count + cost <= limit then
  allowed = 1
  local score = fmt(now)
  local i = 1
  while i <= cost do
    local batch = {}
    local last = math.min(cost, i + 499)
    for j = i, last do
      batch[#batch + 1] = score
      batch[#batch + 1] = nonce .. ':' .. j
    end
    redis.call('ZADD', key, unpack(batch))
    i = last + 1
  end
  count = count + cost
  if cost > 0 then
    redis.call('PEXPIRE', key, fmt(math.ceil(window / 1000)))
  end
elseif cost > limit then
  retry_after = -1
else
  -- The unit that must leave the window before this call fits.
  local k = count + cost - limit
  local entry = redis.call('ZRANGE', key, k - 1, k - 1, 'WITHSCORES')
  retry_after = tonumber(entry[2]) + window - now
end
local reset_after = 0
local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if newest[2] then reset_after = tonumber(newest[2]) + window - now end
return {allowed, limit, math.max(0, limit - count), retry_after, reset_after, 0, now}
