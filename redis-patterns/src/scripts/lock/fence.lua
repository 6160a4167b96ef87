-- Issue a fencing token to the current holder of a lock (after _fencing_token.lua).
-- KEYS[1]  lock key: the owner token, followed by '*' once someone waited
-- KEYS[2]  fencing key (same hash tag as KEYS[1]): the last token issued for this lock name
-- ARGV[1]  owner token
-- ARGV[2]  lease in milliseconds: the fencing key's TTL
-- Returns the token, or 0 when the lock is no longer held by this owner (none is issued).
--
-- A token is only issued while its owner holds the lock, so the tokens of successive
-- holders increase in the order of their holdings, whenever each asks for its own.
local value = redis.call('GET', KEYS[1])
if value ~= ARGV[1] and value ~= ARGV[1] .. '*' then return 0 end
return issue_fencing_token(KEYS[2], ARGV[2])
