-- Sliding window log: one sorted-set member per admitted call, scored by its admission time
-- and named `<nonce>:<cost>`, and the sum of those costs in a second key. The window
-- (now - window, now] is counted exactly, while a call of any cost adds one member: the work
-- and memory of a call do not grow with its cost. Trimming removes each call once, so its
-- work is bounded by the number of calls that left the window.
-- KEYS[1]  sorted set of admitted calls (member `<nonce>:<cost>`, score = admission µs)
-- KEYS[2]  total cost of the members of KEYS[1]; same hash tag, same TTL
-- ARGV[1]  'take', or 'refund' to remove the call a take added
-- ARGV[2]  limit (units per window), at most 2^40
-- ARGV[3]  window in microseconds, 1 to 2^50
-- ARGV[4]  cost (units), at most 2^40 + 1
-- ARGV[5]  nonce of this call (64-bit random, decimal)
-- Returns {allowed 0|1, limit, remaining, retry_after µs (-1: never), reset_after µs, 0,
--          server time µs}; a refund returns 1. Out-of-range arguments are an error raised
--          before anything is written.
local function fmt(x) return string.format('%.0f', x) end
local function whole(x, lo, hi) return x ~= nil and x >= lo and x <= hi and x == math.floor(x) end
local function cost_of(member) return tonumber(string.match(member, ':(%d+)$')) or 0 end
local log, total_key = KEYS[1], KEYS[2]
local limit, window, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if not (whole(limit, 0, 2^40) and whole(window, 1, 2^50) and whole(cost, 0, 2^40 + 1)) then
  return redis.error_reply('rate limit arguments out of range (limit 0..2^40, window 1..2^50 us, cost 0..2^40+1)')
end
local member = ARGV[5] .. ':' .. fmt(cost)

-- The total is rebuilt from the members if it went missing on its own (it never should).
local function sum_of_members()
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGE', log, 0, -1)) do sum = sum + cost_of(m) end
  return sum
end

local function save(total, ttl_ms)
  if total > 0 then
    redis.call('PEXPIRE', log, fmt(ttl_ms))
    redis.call('SET', total_key, fmt(total), 'PX', fmt(ttl_ms))
  else
    redis.call('DEL', log, total_key)
  end
end

if ARGV[1] == 'refund' then
  if redis.call('ZREM', log, member) == 1 then
    local total = tonumber(redis.call('GET', total_key))
    if total then total = total - cost else total = sum_of_members() end
    if total > 0 then
      redis.call('SET', total_key, fmt(total), 'KEEPTTL')
    else
      redis.call('DEL', log, total_key)
    end
  end
  return 1
end

local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local cutoff = fmt(now - window)
local total = tonumber(redis.call('GET', total_key))
local changed = false
local left = redis.call('ZRANGEBYSCORE', log, '-inf', cutoff)
if #left > 0 then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', cutoff)
  changed = true
end
if total then
  for _, m in ipairs(left) do total = total - cost_of(m) end
else
  total = sum_of_members()
  changed = true
end

local allowed, retry_after = 0, 0
if total + cost <= limit then
  allowed = 1
  if cost > 0 then
    -- The nonce is 64-bit random: two calls of one key never share a member.
    redis.call('ZADD', log, fmt(now), member)
    total = total + cost
    changed = true
  end
elseif cost > limit then
  retry_after = -1
else
  -- The oldest calls leave first: this one fits once enough of their units have left.
  local needed, freed, from, found = total + cost - limit, 0, 0, false
  while not found do
    local batch = redis.call('ZRANGE', log, from, from + 63, 'WITHSCORES')
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      freed = freed + cost_of(batch[i])
      if freed >= needed then
        retry_after = tonumber(batch[i + 1]) + window - now
        found = true
        break
      end
    end
    from = from + 64
  end
end

local reset_after = 0
local newest = redis.call('ZRANGE', log, -1, -1, 'WITHSCORES')
if newest[2] then reset_after = tonumber(newest[2]) + window - now end
if changed then save(total, math.ceil(reset_after / 1000)) end
return {allowed, limit, math.max(0, limit - total), retry_after, reset_after, 0, now}
