-- The merchant's emergency stop, set or lifted. Checked and set in one step, as close
-- does, so it never creates a half-made sale hash.
-- KEYS: sale
-- ARGV: halted (1|0)
-- Returns 1 when the sale exists (flag now as asked), 0 otherwise.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'halted', ARGV[1])
return 1
