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
local function fmt(x) return string.format('%.0f', x) end
local function whole(x, lo, hi) return x ~= nil and x >= lo and x <= hi and x == math.floor(x) end
-- Differences of `end` values are below 2^42 (the units of one window), far below the
-- modulus, so they are exact; every number here stays below 2^53.
local M = 2^52
local function parse(member)
  local e, c = string.match(member, '^(%d+):(%d+)$')
  return tonumber(e), tonumber(c)
end
local function member(e, c) return fmt(e) .. ':' .. fmt(c) end
local log = KEYS[1]
local limit, window, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not (whole(limit, 0, 2^40) and whole(window, 1, 2^50) and whole(cost, 0, 2^40 + 1)) then
  return redis.error_reply('rate limit arguments out of range (limit 0..2^40, window 1..2^50 us, cost 0..2^40+1)')
end

if ARGV[1] == 'refund' then
  local at = fmt(tonumber(ARGV[5]) or -1)
  local ours = redis.call('ZRANGEBYSCORE', log, at, at)[1]
  local rank = nil
  if ours and select(2, parse(ours)) == cost then rank = redis.call('ZRANK', log, ours) end
  if rank then
    -- The calls admitted after it counted its units in their `end`: move them back. A refund
    -- follows its take within a round trip, so these are the few calls of that moment.
    local later = redis.call('ZRANGE', log, rank + 1, -1, 'WITHSCORES')
    redis.call('ZREM', log, ours)
    for i = 1, #later, 2 do
      local e, c = parse(later[i])
      -- Added before the old one is removed: the set never empties, so it keeps its TTL.
      redis.call('ZADD', log, later[i + 1], member((e - cost) % M, c))
      redis.call('ZREM', log, later[i])
    end
  end
  return 1
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
redis.call('ZREMRANGEBYSCORE', log, '-inf', fmt(now - window))
local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
local base, last_end, last_at, total = 0, 0, nil, 0
if oldest[1] then
  local e, c = parse(oldest[1])
  base = (e - c) % M
  last_end = parse(newest[1])
  last_at = tonumber(newest[2])
  total = (last_end - base) % M
end

local allowed, retry_after, stamp = 0, 0, 0
if total + cost <= limit then
  allowed = 1
  if cost > 0 then
    local at = now
    if last_at and last_at >= now then at = last_at + 1 end
    stamp = at
    redis.call('ZADD', log, fmt(at), member((last_end + cost) % M, cost))
    redis.call('PEXPIRE', log, fmt(math.ceil((at + window - now) / 1000)))
    total = total + cost
    last_at = at
  end
elseif cost > limit then
  retry_after = -1
else
  -- 1 <= needed <= total: the newest call's rank always qualifies.
  local needed = total + cost - limit
  local lo, hi = 0, redis.call('ZCARD', log) - 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = parse(redis.call('ZRANGE', log, mid, mid)[1])
    if (e - base) % M >= needed then hi = mid else lo = mid + 1 end
  end
  local leaving = redis.call('ZRANGE', log, lo, lo, 'WITHSCORES')
  retry_after = tonumber(leaving[2]) + window - now
end

local reset_after = 0
if last_at then reset_after = last_at + window - now end
return {allowed, math.max(0, limit - total), retry_after, reset_after, stamp, now}
