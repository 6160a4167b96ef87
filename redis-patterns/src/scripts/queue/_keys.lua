-- A queue's keys, all in its hash tag: ready (list of job ids), delayed (sorted set of ids by
-- due time), leases (sorted set of claimed ids by lease expiry), jobs (hash: `<id>` payload,
-- `<id>:a` attempts, `<id>:o` the claiming worker's token, `<id>:e` the last error), dead
-- (list of dead jobs, JSON), wake (list of wake-up tokens for idle workers).
local ready, delayed, leases, jobs, dead, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

-- The server's clock in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Moves the job `id` to the dead list (its last `cap` entries kept) with why it failed, and
-- forgets it.
local function bury(id, attempts, why, cap, at)
  local payload = redis.call('HGET', jobs, id) or ''
  redis.call('RPUSH', dead, cjson.encode({id = id, d = payload, attempts = attempts,
    error = why, at = at}))
  redis.call('LTRIM', dead, -cap, -1)
  redis.call('HDEL', jobs, id, id .. ':a', id .. ':o', id .. ':e')
  redis.call('ZREM', leases, id)
end

-- Wakes an idle worker: one token per job made ready (the list keeps the last 1,000, for a
-- day).
local function wake_one()
  redis.call('RPUSH', wake, '1')
  redis.call('LTRIM', wake, -1000, -1)
  redis.call('PEXPIRE', wake, 86400000)
end
