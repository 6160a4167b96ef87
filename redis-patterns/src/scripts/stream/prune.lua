-- Forgets the group's consumers idle for `idle` ms or more with nothing pending (processes
-- that stopped; what they had pending was reclaimed), and `consumer` itself when it is
-- leaving with nothing pending. A consumer with pending events is never deleted: that would
-- drop them.
-- KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] idle, ARGV[4] leaving ('1').
-- Returns how many consumers were deleted (0 when the group does not exist).
local stream, group, me = KEYS[1], ARGV[1], ARGV[2]
local idle_limit, leaving = tonumber(ARGV[3]), ARGV[4] == '1'
local consumers = redis.pcall('XINFO', 'CONSUMERS', stream, group)
if consumers.err then
  return 0
end
local deleted = 0
for _, consumer in ipairs(consumers) do
  local name, pending, idle
  for i = 1, #consumer, 2 do
    local field = consumer[i]
    if field == 'name' then
      name = consumer[i + 1]
    elseif field == 'pending' then
      pending = consumer[i + 1]
    elseif field == 'idle' then
      idle = consumer[i + 1]
    end
  end
  local gone = (name == me and leaving) or (name ~= me and idle >= idle_limit)
  if pending == 0 and gone then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, name)
    deleted = deleted + 1
  end
end
return deleted
