-- GCRA (generic cell rate algorithm), with the outputs of redis-cell's CL.THROTTLE. One
-- value: the theoretical arrival time (TAT) of the next unit, in server microseconds.
--
-- Also the token bucket's script: a bucket of `burst` whole tokens gaining one every
-- `interval` is this algorithm, with the TAT as the time the bucket is full again. It holds
-- burst - ceil((TAT - now) / interval) tokens, and `tokens >= cost` is GCRA's test
-- TAT + cost * interval - burst * interval <= now; the retry and reset times agree too.
-- KEYS[1]  TAT; missing = now
-- ARGV[1]  'take', or 'refund' to move the TAT back
-- ARGV[2]  burst, at most 2^40 (units admitted at once from idle)
-- ARGV[3]  emission interval in microseconds (window / limit)
-- ARGV[4]  cost (units)
-- Returns {allowed 0|1, remaining, retry_after µs (-1: never), reset_after µs, 0,
--          server time µs}; a refund returns 1. Out-of-range arguments are an error
--          raised before anything is written.
local function fmt(x) return string.format('%.0f', x) end
local key, burst, interval, cost = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
-- Every product below is at most burst × interval <= 2^51 (a cost above the burst is denied
-- before any), so Lua's doubles compute it exactly, as the mem:// twin does in integers.
if not (burst and interval and cost and burst >= 0 and burst <= 1099511627776 and burst % 1 == 0
    and interval >= 1 and interval <= 1125899906842624 and interval % 1 == 0
    and burst * interval <= 2251799813685248
    and cost >= 0 and cost <= 1099511627777 and cost % 1 == 0) then
  return redis.error_reply('rate limit arguments out of range (burst 0..2^40, interval 1..2^50 us, burst * interval <= 2^51, cost 0..2^40+1)')
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local stored = redis.call('GET', key)
local tat = stored and tonumber(stored) or now
if tat < now then tat = now end
if ARGV[1] == 'refund' then
  tat = math.max(now, tat - math.min(cost, burst) * interval)
  if tat > now then
    redis.call('SET', key, fmt(tat), 'PX', fmt(math.ceil((tat - now) / 1000)))
  else
    redis.call('DEL', key)
  end
  return 1
end
local tolerance = interval * burst
local allowed, retry_after, ttl = 0, 0, tat - now
if cost > burst then
  retry_after = -1
elseif tat + cost * interval - tolerance <= now then
  local new_tat = tat + cost * interval
  allowed = 1
  ttl = new_tat - now
  if ttl > 0 then
    redis.call('SET', key, fmt(new_tat), 'PX', fmt(math.ceil(ttl / 1000)))
  end
else
  retry_after = tat + cost * interval - tolerance - now
end
local remaining = math.max(0, math.floor((tolerance - ttl) / interval))
return {allowed, remaining, retry_after, ttl, 0, now}
