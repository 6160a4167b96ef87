-- Prepended to acquire.lua and fence.lua (one script each): issues the next fencing token of a
-- lock whose fencing key is `fence` (same hash tag as the lock), kept for `lease_ms`.
--
-- A token is the greater of (last token + 1) and the server's clock in microseconds. So tokens
-- keep increasing even when the fencing key is gone (expired, evicted, flushed, or the server
-- restarted without persistence): the clock has moved past every token issued before, since
-- no lock name is issued more than one token per microsecond. That is why the fencing key can
-- expire with the lease instead of living forever.
local function issue_fencing_token(fence, lease_ms)
  local time = redis.call('TIME')
  local token = tonumber(time[1]) * 1000000 + tonumber(time[2])
  -- Usually the clock is ahead of the last token: one SET ... GET stores it and reads the last
  -- one. Only when it is not (two tokens in a microsecond, a clock stepped back) is the token
  -- the last one + 1, stored by a second SET.
  local last = tonumber(redis.call('SET', fence, string.format('%d', token), 'PX', lease_ms, 'GET'))
  if last and last >= token then
    token = last + 1
    redis.call('SET', fence, string.format('%d', token), 'PX', lease_ms)
  end
  return token
end
