-- Sliding window log: one sorted-set member per admitted call, whatever its cost, so the work
-- and memory of a call do not grow with its cost, and the window (now - window, now] is still
-- counted exactly. A member is `<end>:<cost>`, where `end` is the running sum of the costs
-- admitted to this log up to and including this call (modulo 2^52); its score is the
-- admission time. Scores strictly increase (a call in the same microsecond as the newest is
-- stamped one microsecond later, which only keeps it counted that much longer), so rank order
-- is admission order and `end` grows with the rank. Then, with `base` = end - cost of the
-- oldest member:
--   units in the window = end of the newest - base          (two O(log n) reads)
--   the oldest calls whose leaving frees `needed` units end at the first rank whose
--   end - base >= needed                                   (a binary search over ranks)
-- Trimming is one ZREMRANGEBYSCORE: each call is removed once, so its work is bounded by the
-- number of calls that left the window, never by their cost.
-- KEYS[1]  sorted set of admitted calls (member `<end>:<cost>`, score = admission µs)
-- ARGV[1]  'take', or 'refund' to remove the call a take added
-- ARGV[2]  limit (units per window), at most 2^40
-- ARGV[3]  window in microseconds, 1 to 2^50
-- ARGV[4]  cost (units), at most 2^40 + 1
-- ARGV[5]  'refund' only: the admission time the take returned (unique in the log: the
--          call's identity, which a refund of an earlier call does not change)
-- Returns {allowed 0|1, remaining, retry_after µs (-1: never), reset_after µs,
--          admission time of this call (0 if nothing was added), server time µs}; a refund
--          returns 1.
--          Out-of-range arguments are an error raised before anything is written.
--
-- The admitting path is written for the server's time (like fixed_window.lua): no helper
-- closures, index arguments sent as strings, the newest member read only
-- when the log is not empty.
local log = KEYS[1]
local limit, window, units = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not (limit and window and units and limit >= 0 and limit <= 1099511627776 and limit % 1 == 0
    and window >= 1 and window <= 1125899906842624 and window % 1 == 0
    and units >= 0 and units <= 1099511627777 and units % 1 == 0) then
  return redis.error_reply('rate limit arguments out of range (limit 0..2^40, window 1..2^50 us, cost 0..2^40+1)')
end
-- Differences of `end` values are below 2^42 (the units of one window), far below the
-- modulus 2^52, so they are exact; every number here stays below 2^53.
local M = 4503599627370496
local PATTERN = '^(%d+):(%d+)$'

if ARGV[1] == 'refund' then
  local at = string.format('%.0f', tonumber(ARGV[5]) or -1)
  local ours = redis.call('ZRANGEBYSCORE', log, at, at)[1]
  local rank = nil
  if ours and tonumber(select(2, string.match(ours, PATTERN))) == units then
    rank = redis.call('ZRANK', log, ours)
  end
  if rank then
    -- The calls admitted after it counted its units in their `end`: move them back. A refund
    -- follows its take within a round trip, so these are the few calls of that moment.
    local later = redis.call('ZRANGE', log, rank + 1, -1, 'WITHSCORES')
    redis.call('ZREM', log, ours)
    for i = 1, #later, 2 do
      local e, c = string.match(later[i], PATTERN)
      -- Added before the old one is removed: the set never empties, so it keeps its TTL.
      redis.call('ZADD', log, later[i + 1], string.format('%.0f', (e - units) % M) .. ':' .. c)
      redis.call('ZREM', log, later[i])
    end
  end
  return 1
end

local time = redis.call('TIME')
local now = time[1] * 1000000 + time[2]
redis.call('ZREMRANGEBYSCORE', log, '-inf', string.format('%.0f', now - window))
local oldest = redis.call('ZRANGE', log, '0', '0', 'WITHSCORES')
local base, last_end, last_at, total = 0, 0, nil, 0
if oldest[1] then
  local e, c = string.match(oldest[1], PATTERN)
  base = (e - c) % M
  local newest = redis.call('ZRANGE', log, '-1', '-1', 'WITHSCORES')
  last_end = tonumber(string.match(newest[1], '^%d+'))
  last_at = tonumber(newest[2])
  total = (last_end - base) % M
end

local allowed, retry_after, stamp = 0, 0, 0
if total + units <= limit then
  allowed = 1
  if units > 0 then
    local at = now
    if last_at and last_at >= now then at = last_at + 1 end
    stamp = at
    redis.call('ZADD', log, string.format('%.0f', at), string.format('%.0f:%.0f', (last_end + units) % M, units))
    redis.call('PEXPIRE', log, string.format('%.0f', math.ceil((at + window - now) / 1000)))
    total = total + units
    last_at = at
  end
elseif units > limit then
  retry_after = -1
else
  -- 1 <= needed <= total: the newest call's rank always qualifies.
  local needed = total + units - limit
  local lo, hi = 0, redis.call('ZCARD', log) - 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = string.match(redis.call('ZRANGE', log, mid, mid)[1], PATTERN)
    if (e - base) % M >= needed then hi = mid else lo = mid + 1 end
  end
  local leaving = redis.call('ZRANGE', log, lo, lo, 'WITHSCORES')
  retry_after = tonumber(leaving[2]) + window - now
end

local reset_after = 0
if last_at then reset_after = last_at + window - now end
return {allowed, math.max(0, limit - total), retry_after, reset_after, stamp, now}
