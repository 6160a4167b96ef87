-- Token bucket: holds up to `burst` tokens and gains one every `interval` microseconds
-- (interval = window / limit), counted in whole tokens so that it is exact.
-- KEYS[1]  hash {t = tokens, s = time µs up to which refills are counted}; missing = full
-- ARGV[1]  'take', or 'refund' to give tokens back
-- ARGV[2]  burst, at most 2^40 (capacity, tokens)
-- ARGV[3]  interval in microseconds per token
-- ARGV[4]  cost (tokens)
-- Returns {allowed 0|1, burst, remaining, retry_after µs (-1: never), reset_after µs, 0,
--          server time µs}; a refund returns 1. Out-of-range arguments are an error
--          raised before anything is written.
local function fmt(x) return string.format('%.0f', x) end
local function whole(x, lo, hi) return x ~= nil and x >= lo and x <= hi and x == math.floor(x) end
local key, burst, interval, cost = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
-- Every product below is at most burst × interval <= 2^51 (a cost above the burst is denied
-- before any), so Lua's doubles compute it exactly, as the mem:// twin does in integers.
if not (whole(burst, 0, 2^40) and whole(interval, 1, 2^50) and burst * interval <= 2^51
        and whole(cost, 0, 2^40 + 1)) then
  return redis.error_reply('rate limit arguments out of range (burst 0..2^40, interval 1..2^50 us, burst * interval <= 2^51, cost 0..2^40+1)')
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local stored = redis.call('HMGET', key, 't', 's')
local tokens, since = tonumber(stored[1]), tonumber(stored[2])
if tokens == nil or since == nil then
  tokens, since = burst, now
elseif now > since then
  local gained = math.floor((now - since) / interval)
  tokens = tokens + gained
  since = since + gained * interval
end
if tokens >= burst then
  tokens, since = burst, now
end
local allowed, retry_after = 0, 0
if ARGV[1] == 'refund' then
  tokens = math.min(burst, tokens + cost)
elseif tokens >= cost then
  allowed = 1
  tokens = tokens - cost
elseif cost > burst then
  retry_after = -1
else
  retry_after = math.max(0, (cost - tokens) * interval - (now - since))
end
local reset_after = 0
if tokens < burst then
  reset_after = math.max(0, (burst - tokens) * interval - (now - since))
end
if allowed == 1 or ARGV[1] == 'refund' then
  if reset_after > 0 then
    redis.call('HSET', key, 't', fmt(tokens), 's', fmt(since))
    redis.call('PEXPIRE', key, fmt(math.ceil(reset_after / 1000)))
  else
    redis.call('DEL', key)
  end
end
if ARGV[1] == 'refund' then return 1 end
return {allowed, burst, tokens, retry_after, reset_after, 0, now}
