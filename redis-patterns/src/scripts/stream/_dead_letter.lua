-- Moves the pending event `id` of group `group` to the dead-letter stream KEYS[2] (capped at
-- `cap`, approximately) with why it failed, and acknowledges it. The event stays in its stream
-- for the other groups.
local function dead_letter(stream, dead, group, id, fields, deliveries, consumer, why, cap)
  local payload = ''
  if fields then
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then
        payload = fields[i + 1]
      end
    end
  end
  redis.call('XADD', dead, 'MAXLEN', '~', cap, '*', 'd', payload, 'id', id, 'group', group,
    'consumer', consumer, 'deliveries', deliveries, 'error', why)
  redis.call('XACK', stream, group, id)
end
