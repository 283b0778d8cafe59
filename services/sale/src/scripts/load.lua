-- Creates or updates a sale. Creating sets remaining = stock. Updating changes the
-- terms; a new total stock moves remaining by the difference and is refused when it
-- would be below what is reserved and sold. Buyers, reservations, idempotency keys
-- and the closed flag are never touched.
-- A sale that lost its hash is rebuilt from its orders (restore.lua), never created
-- empty: with create = 0 an absent sale answers {"ABSENT"} and nothing is written.
-- KEYS: sale
-- ARGV: product_id, price_cents, opens_at_ms, closes_at_ms, per_user_limit, stock, create (1|0),
--       then the waiting room's pre_queue_ms, admit_per_second, turn_ttl_ms ('' for none)
-- Returns {"CREATED"}, {"UPDATED"}, {"UNCHANGED"}, {"ABSENT"} or {"BELOW_COMMITTED", committed}.
local sale = KEYS[1]
local stock = tonumber(ARGV[6])
local terms = {'product_id', ARGV[1], 'price_cents', ARGV[2], 'opens_at_ms', ARGV[3], 'closes_at_ms', ARGV[4], 'per_user_limit', ARGV[5]}
-- The waiting room's terms: set, or gone (its queue keys stay, unused, until the sale is removed).
local function queue_terms()
  if ARGV[9] == '' then
    redis.call('HDEL', sale, 'q_pre_ms', 'q_rate', 'q_ttl_ms')
  else
    redis.call('HSET', sale, 'q_pre_ms', ARGV[8], 'q_rate', ARGV[9], 'q_ttl_ms', ARGV[10])
  end
end
if redis.call('EXISTS', sale) == 0 then
  if ARGV[7] ~= '1' then return {'ABSENT'} end
  redis.call('HSET', sale, 'initial', stock, 'remaining', stock, 'reserved', 0, 'sold', 0, 'closed', 0, unpack(terms))
  queue_terms()
  return {'CREATED'}
end
local c = redis.call('HMGET', sale, 'initial', 'reserved', 'sold', 'product_id', 'price_cents', 'opens_at_ms', 'closes_at_ms', 'per_user_limit',
  'q_pre_ms', 'q_rate', 'q_ttl_ms')
local initial, reserved, sold = tonumber(c[1]), tonumber(c[2]), tonumber(c[3])
if stock < reserved + sold then return {'BELOW_COMMITTED', reserved + sold} end
local same = stock == initial and c[4] == ARGV[1] and c[5] == ARGV[2] and c[6] == ARGV[3] and c[7] == ARGV[4] and c[8] == ARGV[5]
  and (c[9] or '') == ARGV[8] and (c[10] or '') == ARGV[9] and (c[11] or '') == ARGV[10]
if same then return {'UNCHANGED'} end
redis.call('HINCRBY', sale, 'remaining', stock - initial)
redis.call('HSET', sale, 'initial', stock, unpack(terms))
queue_terms()
return {'UPDATED'}
