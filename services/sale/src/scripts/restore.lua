-- Rebuilds a sale that the store lost (restart, flush) from durable records, in one
-- step: the terms, every order's reservation (R reserved, S sold, X released), each
-- buyer's units (0 for a buyer whose units went back: still a buyer, as before the
-- loss) and every recorded Idempotency-Key's first answer, so no purchase can run
-- between loading the stock and re-reserving what the orders hold, and a retry finds
-- its first order.
-- The waiting room's queue is not in the durable records: it starts empty (a shopper
-- rejoins; docs/decisions.md).
-- KEYS: sale, buyers, idem, reservations, queue, turns, pending
-- ARGV: product_id, price_cents, opens_at_ms, closes_at_ms, per_user_limit, stock,
--       closed (0|1), epoch, the waiting room's pre_queue_ms, admit_per_second,
--       turn_ttl_ms ('' for none), then per order: order_id, user_id, quantity, state
--       (R|S|X), idempotency key ('' for none; a real key is never empty)
-- Returns 1 when this call rebuilt the sale, 0 when it existed (nothing changed).
local sale, buyers, idem, reservations = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', sale) == 1 then return 0 end
-- Without the sale hash its other keys are leftovers of nothing; start clean.
redis.call('DEL', buyers, idem, reservations, KEYS[5], KEYS[6], KEYS[7])
local stock, reserved, sold = tonumber(ARGV[6]), 0, 0
for i = 12, #ARGV, 5 do
  local order_id, user, qty, state, key = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
  local held = qty
  if state == 'S' then sold = sold + qty elseif state == 'R' then reserved = reserved + qty else held = 0 end
  redis.call('HINCRBY', buyers, user, held)
  redis.call('HSET', reservations, order_id, user .. ':' .. qty .. ':' .. state)
  if key ~= '' then redis.call('HSET', idem, user .. ':' .. key, order_id) end
end
redis.call('HSET', sale, 'initial', stock, 'remaining', stock - reserved - sold, 'reserved', reserved, 'sold', sold,
  'closed', ARGV[7], 'product_id', ARGV[1], 'price_cents', ARGV[2], 'opens_at_ms', ARGV[3], 'closes_at_ms', ARGV[4],
  'per_user_limit', ARGV[5], 'epoch', ARGV[8])
if ARGV[10] ~= '' then redis.call('HSET', sale, 'q_pre_ms', ARGV[9], 'q_rate', ARGV[10], 'q_ttl_ms', ARGV[11]) end
return 1
