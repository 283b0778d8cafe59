-- Rebuilds a sale that the store lost (restart, flush) from durable records, in one
-- step: the terms, and every order still holding units, so no purchase can run
-- between loading the stock and re-reserving what the orders hold.
-- KEYS: sale, buyers, reservations
-- ARGV: product_id, price_cents, opens_at_ms, closes_at_ms, per_user_limit, stock,
--       closed (0|1), then per holding order: order_id, user_id, quantity, state (R|S)
-- Returns 1 when this call rebuilt the sale, 0 when it existed (nothing changed).
local sale, buyers, reservations = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', sale) == 1 then return 0 end
local stock, reserved, sold = tonumber(ARGV[6]), 0, 0
for i = 8, #ARGV, 4 do
  local order_id, user, qty, state = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  if state == 'S' then sold = sold + qty else reserved = reserved + qty end
  redis.call('HINCRBY', buyers, user, qty)
  redis.call('HSET', reservations, order_id, user .. ':' .. qty .. ':' .. state)
end
redis.call('HSET', sale, 'initial', stock, 'remaining', stock - reserved - sold, 'reserved', reserved, 'sold', sold,
  'closed', ARGV[7], 'product_id', ARGV[1], 'price_cents', ARGV[2], 'opens_at_ms', ARGV[3], 'closes_at_ms', ARGV[4],
  'per_user_limit', ARGV[5])
return 1
