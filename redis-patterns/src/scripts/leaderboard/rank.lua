-- A member's rank (1-based) under the board's tie policy, and its score.
-- KEYS and ARGV[1..4] as in _board.lua; ARGV[5] the member.
-- Returns false when the member is not on the board, else {rank, score, position} where
-- position is its 0-based place in the board's order (first come first within a score).
local member = ARGV[5]
local s = redis.call('ZSCORE', KEYS[1], member)
if not s then return false end
local better = better_than(s)
local position = better
local members = group(s)
for i, m in ipairs(members) do
  if m == member then
    position = better + i - 1
    break
  end
end
local rank
if ARGV[2] == 'ordinal' then
  rank = position + 1
else
  rank = group_rank(s, better)
end
return {rank, s, position}
