-- Settles one reservation exactly once.
-- KEYS: sale, buyers, reservations
-- ARGV: order_id, action ("confirm": R -> S; "release": R or S -> X)
-- Returns "CONFIRMED", "RELEASED", "ALREADY" or "UNKNOWN".
local sale, buyers, reservations = KEYS[1], KEYS[2], KEYS[3]
local order_id, action = ARGV[1], ARGV[2]
local r = redis.call('HGET', reservations, order_id)
if not r then return 'UNKNOWN' end
local user, qty, state = string.match(r, '^([^:]+):([^:]+):(%a)$')
qty = tonumber(qty)
if action == 'confirm' then
  if state ~= 'R' then return 'ALREADY' end
  redis.call('HINCRBY', sale, 'reserved', -qty)
  redis.call('HINCRBY', sale, 'sold', qty)
  redis.call('HSET', reservations, order_id, user .. ':' .. qty .. ':S')
  return 'CONFIRMED'
end
if state == 'X' then return 'ALREADY' end
redis.call('HINCRBY', sale, state == 'R' and 'reserved' or 'sold', -qty)
redis.call('HINCRBY', sale, 'remaining', qty)
redis.call('HINCRBY', buyers, user, -qty)
redis.call('HSET', reservations, order_id, user .. ':' .. qty .. ':X')
return 'RELEASED'
