-- Submit a member's score under the board's policy, atomically, and record when its score
-- last changed (the first-come tie-break of ordinal ranks).
-- KEYS[1]  the board: a sorted set of members by score
-- KEYS[2]  the board's times: a sorted set of members by the server time (µs) their current
--          score was reached
-- ARGV[1]  member
-- ARGV[2]  score (or, for 'sum', the amount to add)
-- ARGV[3]  policy: 'best' (keep the better score), 'latest' (replace), 'sum' (add)
-- ARGV[4]  order: 'high' (higher scores are better) or 'low'
-- ARGV[5]  expiry: 0 for none, else milliseconds since the Unix epoch (PEXPIREAT, a period's
--          end of retention) if ARGV[6] is 'at', or a TTL in milliseconds (PEXPIRE) if 'ttl'
-- ARGV[6]  'at' or 'ttl'
-- Returns {changed (0 or 1), the member's score now (as given, or as Redis formats it)}.
local member, score = ARGV[1], tonumber(ARGV[2])
local old = redis.call('ZSCORE', KEYS[1], member)
local changed, now_score = 0, old
if ARGV[3] == 'sum' then
  now_score = redis.call('ZINCRBY', KEYS[1], ARGV[2], member)
  if old == false or score ~= 0 then changed = 1 end
elseif ARGV[3] == 'latest' then
  if old == false or tonumber(old) ~= score then
    redis.call('ZADD', KEYS[1], ARGV[2], member)
    changed, now_score = 1, ARGV[2]
  end
else
  local better = old == false
    or (ARGV[4] == 'high' and score > tonumber(old))
    or (ARGV[4] == 'low' and score < tonumber(old))
  if better then
    redis.call('ZADD', KEYS[1], ARGV[2], member)
    changed, now_score = 1, ARGV[2]
  end
end
if changed == 1 then
  local now = redis.call('TIME')
  redis.call('ZADD', KEYS[2], now[1] * 1000000 + now[2], member)
end
local expiry = tonumber(ARGV[5])
if expiry > 0 then
  local command = ARGV[6] == 'at' and 'PEXPIREAT' or 'PEXPIRE'
  redis.call(command, KEYS[1], expiry)
  redis.call(command, KEYS[2], expiry)
end
return {changed, now_score}
