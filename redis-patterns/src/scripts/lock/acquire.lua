-- A waiter's attempt at a lock, or any attempt at a lock that issues its fencing token with
-- the grant (after _fencing_token.lua): take it, or mark it as awaited. (Other first attempts
-- are a plain SET NX PX; only callers that were refused once come here.)
-- KEYS[1]  lock key: the owner token, followed by '*' once someone waited for this holder if
--          the token ends with '!' (this version's tokens: their releases and extensions accept
--          the '*'; a token of an earlier version, ending with '+' or a hex digit, is never
--          changed, so its holder still finds its lock)
-- KEYS[2]  waiters' mark (same hash tag as KEYS[1], named apart from the lock's other keys:
--          `ns:^{name}:waiters`): exists while someone waits for the lock; the release script
--          rewrites it when the holder's value says someone waited, and that write is what
--          wakes the waiters (their client tracks the marks' prefix, so it hears releases and
--          not acquisitions)
-- KEYS[3]  optional, for a lock that issues its fencing token with the grant: the fencing key
--          (_fencing_token.lua issues the token after a grant)
-- ARGV[1]  owner token (random, 128 bits, hex, then '!')
-- ARGV[2]  lease in milliseconds
-- Returns {1} when acquired ({1, fencing_token} with KEYS[3]), {0, remaining_lease_ms_of_the
-- holder, marked} when not, where marked is 1 if the waiters' mark is in place and the holder
-- will rewrite it (0: the mark could not be written, say under maxmemory, or the holder is of
-- an earlier version, which rewrites another mark or none: the caller should poll).
local awaited = redis.call('EXISTS', KEYS[2]) == 1
-- Others still wait: this holder's release must wake them.
local value = ARGV[1]
if awaited and string.sub(value, -1) == '!' then value = value .. '*' end
if redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[2]) then
  if not KEYS[3] then return {1} end
  return {1, issue_fencing_token(KEYS[3], ARGV[2])}
end
-- Refused: mark the lock as awaited, for as long as this caller's own lease would last. Only
-- the first waiter writes (NX), so waiting adds no write per attempt; an expired mark is a
-- change its trackers hear too, and they mark it again. The holder's value gets its '*' once.
local marked = 1
if not awaited then
  local set = redis.pcall('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2])
  if type(set) == 'table' and set.err then marked = 0 end
end
local holder = redis.call('GET', KEYS[1])
if holder and string.sub(holder, -1) == '!' then
  local set = redis.pcall('SET', KEYS[1], holder .. '*', 'XX', 'KEEPTTL')
  if type(set) == 'table' and set.err then marked = 0 end
elseif not (holder and string.sub(holder, -2) == '!*') then
  marked = 0
end
return {0, redis.call('PTTL', KEYS[1]), marked}
