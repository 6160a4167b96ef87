-- The members at 0-based positions [start, start + count) of the board's order (better
-- scores first; within a score, first come first), with their ranks under the tie policy.
-- KEYS and ARGV[1..4] as in _board.lua
-- ARGV[5]  start, or with ARGV[7], how many places to show above the member (and below it)
-- ARGV[6]  count, at most
-- ARGV[7]  optional: a member to centre on (the page starts ARGV[5] places above it; none
--          when it is not on the board)
-- Returns {member, score, rank, member, score, rank, …}.
local start, count = tonumber(ARGV[5]), tonumber(ARGV[6])
if ARGV[7] then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[7])
  if not s then return {} end
  local position = better_than(s)
  for i, m in ipairs(group(s)) do
    if m == ARGV[7] then
      position = position + i - 1
      break
    end
  end
  local above = start
  start = math.max(0, position - above)
  count = math.min(count, position + above + 1 - start)
end
if count <= 0 then return {} end
local raw
if high then
  raw = redis.call('ZREVRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')
else
  raw = redis.call('ZRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')
end
if #raw == 0 then return {} end
-- The distinct scores on the page, in order: each group is contiguous in both orders.
local scores = {}
for i = 2, #raw, 2 do
  if scores[#scores] ~= raw[i] then scores[#scores + 1] = raw[i] end
end
local out = {}
local first = better_than(scores[1])
local group_start = first
local dense = ARGV[2] == 'dense' and distinct_better_than(scores[1]) or 0
for g, s in ipairs(scores) do
  local members = group(s)
  local rank
  if ARGV[2] == 'dense' then
    rank = dense + g
  else
    rank = group_start + 1
  end
  for i, m in ipairs(members) do
    local position = group_start + i - 1
    if position >= start and position < start + count then
      out[#out + 1] = m
      out[#out + 1] = s
      out[#out + 1] = ARGV[2] == 'ordinal' and position + 1 or rank
    end
  end
  group_start = group_start + #members
end
return out
