-- Ends a sale now. Checked and set in one step so a close can never create a
-- half-made sale hash (which would look like a sale with zero stock).
-- KEYS: sale
-- Returns 1 when the sale exists (now closed), 0 otherwise.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'closed', 1)
return 1
