-- Shared by the leaderboard's reads (prepended to them): a combined board built on first
-- read, and the ordering of members within equal scores.
-- KEYS[1]  the board (a sorted set of members by score); KEYS[2] its times
-- KEYS[3..] for a combined board: the boards it combines and their times, alternating
-- ARGV[1]  order: 'high' or 'low'
-- ARGV[2]  ties: 'ordinal', 'competition' or 'dense'
-- ARGV[3]  for a combined board: 'sum', 'max' or 'min' (how scores combine); the times
--          combine by 'max' (when the combined score last changed)
-- ARGV[4]  for a combined board: its TTL in milliseconds, after which it is built again
local high = ARGV[1] == 'high'
if #KEYS > 2 and redis.call('EXISTS', KEYS[1]) == 0 then
  local n = (#KEYS - 2) / 2
  local boards, times = {KEYS[1], n}, {KEYS[2], n}
  for i = 3, #KEYS, 2 do
    boards[#boards + 1] = KEYS[i]
    times[#times + 1] = KEYS[i + 1]
  end
  boards[#boards + 1], boards[#boards + 2] = 'AGGREGATE', string.upper(ARGV[3])
  times[#times + 1], times[#times + 2] = 'AGGREGATE', 'MAX'
  local ttl = tonumber(ARGV[4])
  redis.call('ZUNIONSTORE', unpack(boards))
  redis.call('ZUNIONSTORE', unpack(times))
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end

-- The number of members with a strictly better score than `s` (a score as Redis formats it).
local function better_than(s)
  if high then
    return redis.call('ZCOUNT', KEYS[1], '(' .. s, '+inf')
  end
  return redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. s)
end

-- The number of distinct scores strictly better than `s`: one hop per distinct score.
local function distinct_better_than(s)
  local n = 0
  while true do
    local next
    if high then
      next = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. s, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    else
      next = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. s, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
    end
    if #next == 0 then return n end
    n = n + 1
    s = next[2]
  end
end

-- `members` (of one score) first come first (by time, then by member): O(k log k). A
-- member without a time (written by other code) comes last.
local function by_time(members)
  if #members < 2 then return members end
  local at = {}
  for from = 1, #members, 1000 do
    local batch = {}
    for i = from, math.min(from + 999, #members) do batch[#batch + 1] = members[i] end
    local times = redis.call('ZMSCORE', KEYS[2], unpack(batch))
    for i, m in ipairs(batch) do
      at[m] = tonumber(times[i]) or math.huge
    end
  end
  table.sort(members, function(a, b)
    if at[a] ~= at[b] then return at[a] < at[b] end
    return a < b
  end)
  return members
end

-- Every member with score `s`, first come first: O(log n + k log k) for k members.
local function group(s)
  return by_time(redis.call('ZRANGEBYSCORE', KEYS[1], s, s))
end

-- The rank of the first member of a group of score `s` whose first member stands at
-- 0-based position `start`.
local function group_rank(s, start)
  if ARGV[2] == 'dense' then return distinct_better_than(s) + 1 end
  return start + 1
end
