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
-- The page and its neighbours on either side: a neighbour with the score of the page's first
-- (last) member means that score's group starts before (runs past) the page.
local from = math.max(0, start - 1)
local raw
if high then
  raw = redis.call('ZREVRANGE', KEYS[1], from, start + count, 'WITHSCORES')
else
  raw = redis.call('ZRANGE', KEYS[1], from, start + count, 'WITHSCORES')
end
local before, after
if from < start then
  before = raw[2]
  table.remove(raw, 1)
  table.remove(raw, 1)
end
if #raw > 2 * count then
  after = raw[#raw]
  raw[#raw] = nil
  raw[#raw] = nil
end
if #raw == 0 then return {} end
-- The page's members by score, in order: each score's group is contiguous in both orders,
-- and every group but the first and the last lies wholly on the page.
local groups = {}
for i = 1, #raw, 2 do
  local g = groups[#groups]
  if not g or g.s ~= raw[i + 1] then
    g = {s = raw[i + 1], m = {}}
    groups[#groups + 1] = g
  end
  g.m[#g.m + 1] = raw[i]
end
local first = start
local whole = {}
if before == groups[1].s then
  first = better_than(groups[1].s)
  groups[1].m = redis.call('ZRANGEBYSCORE', KEYS[1], groups[1].s, groups[1].s)
  whole[1] = true
end
if after == groups[#groups].s and not whole[#groups] then
  local s = groups[#groups].s
  groups[#groups].m = redis.call('ZRANGEBYSCORE', KEYS[1], s, s)
end
local out = {}
local group_start = first
local dense = ARGV[2] == 'dense' and distinct_better_than(groups[1].s) or 0
for g, group in ipairs(groups) do
  local members = by_time(group.m)
  local rank = ARGV[2] == 'dense' and dense + g or group_start + 1
  for i, m in ipairs(members) do
    local position = group_start + i - 1
    if position >= start and position < start + count then
      out[#out + 1] = m
      out[#out + 1] = group.s
      out[#out + 1] = ARGV[2] == 'ordinal' and position + 1 or rank
    end
  end
  group_start = group_start + #members
end
return out
