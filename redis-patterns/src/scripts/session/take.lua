-- Delete a session and return what it held (logout, and the first step of a rotation).
-- KEYS[1]  the session (see create.lua)
-- Returns false when there was no session, else {data, user, created, end}.
local s = redis.call('HMGET', KEYS[1], 'd', 'u', 'c', 'e')
if not s[2] then return false end
redis.call('DEL', KEYS[1])
return s
