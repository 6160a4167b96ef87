-- GCRA (generic cell rate algorithm), with the outputs of redis-cell's CL.THROTTLE. One
-- value: the theoretical arrival time (TAT) of the next unit, in server microseconds.
-- KEYS[1]  TAT; missing = now
-- ARGV[1]  'take', or 'refund' to move the TAT back
-- ARGV[2]  burst (units admitted at once from idle)
-- ARGV[3]  emission interval in microseconds (window / limit)
-- ARGV[4]  cost (units)
-- Returns {allowed 0|1, burst, remaining, retry_after µs (-1: never), reset_after µs, 0,
--          server time µs}; a refund returns 1.
local function fmt(x) return string.format('%.0f', x) end
local key, burst, interval, cost = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local stored = redis.call('GET', key)
local tat = stored and tonumber(stored) or now
if tat < now then tat = now end
if ARGV[1] == 'refund' then
  tat = math.max(now, tat - cost * interval)
  if tat > now then
    redis.call('SET', key, fmt(tat), 'PX', fmt(math.ceil((tat - now) / 1000)))
  else
    redis.call('DEL', key)
  end
  return 1
end
local tolerance = interval * burst
local increment = cost * interval
local new_tat = tat + increment
local allow_at = new_tat - tolerance
local allowed, retry_after, ttl = 0, 0, 0
if allow_at <= now then
  allowed = 1
  ttl = new_tat - now
  if ttl > 0 then
    redis.call('SET', key, fmt(new_tat), 'PX', fmt(math.ceil(ttl / 1000)))
  end
else
  ttl = tat - now
  if increment <= tolerance then retry_after = allow_at - now else retry_after = -1 end
end
local remaining = math.max(0, math.floor((tolerance - ttl) / interval))
return {allowed, burst, remaining, retry_after, ttl, 0, now}
