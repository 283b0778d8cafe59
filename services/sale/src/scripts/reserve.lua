-- The purchase decision, atomically.
-- KEYS: sale, buyers, idem, reservations, pending (the waiting room's unbought turns)
-- ARGV: user_id, idempotency_key, quantity, order_id, now_ms, turn_end_ms (the end of
--       the shopper's turn from a verified admission; 0 without one)
-- Checks, in this order: sale exists; a known (user, key) returns its first answer;
-- closed or past the window; halted by the merchant; not open yet; sold out; a sale
-- with a waiting room (q_rate set) needs a turn that has not ended; more than
-- remaining; over the per-user limit (units held = reserved + sold, not released).
-- Returns {"OK", order_id, quantity, remaining, repeated(0|1), epoch} or {"NO", code}
-- (the Refusal::code strings); a refusal writes nothing. The epoch is the sale's
-- generation (absent = 0; a rebuild sets a new one), which the order's commit checks.
local sale, buyers, idem, reservations, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local user, key, qty, order_id, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local turn_end = tonumber(ARGV[6])
if redis.call('EXISTS', sale) == 0 then return {'NO', 'SALE_NOT_FOUND'} end
local first = redis.call('HGET', idem, user .. ':' .. key)
if first then
  local r = redis.call('HGET', reservations, first)
  local q = r and tonumber(string.match(r, '^[^:]+:([^:]+):')) or 0
  local c = redis.call('HMGET', sale, 'remaining', 'epoch')
  return {'OK', first, q, tonumber(c[1]), 1, tonumber(c[2]) or 0}
end
local s = redis.call('HMGET', sale, 'opens_at_ms', 'closes_at_ms', 'remaining', 'per_user_limit', 'closed', 'halted', 'epoch',
  'q_rate')
local opens, closes, remaining, limit, closed = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4]), s[5]
if closed == '1' or now >= closes then return {'NO', 'SALE_CLOSED'} end
if s[6] == '1' then return {'NO', 'SALE_HALTED'} end
if now < opens then return {'NO', 'SALE_NOT_OPEN'} end
if remaining <= 0 then return {'NO', 'SOLD_OUT'} end
if s[8] then
  if turn_end == 0 then return {'NO', 'ADMISSION_REQUIRED'} end
  if turn_end <= now then return {'NO', 'ADMISSION_EXPIRED'} end
end
if qty > remaining then return {'NO', 'INSUFFICIENT_STOCK'} end
local held = tonumber(redis.call('HGET', buyers, user) or '0')
if held + qty > limit then return {'NO', 'PURCHASE_LIMIT'} end
redis.call('HINCRBY', sale, 'remaining', -qty)
redis.call('HINCRBY', sale, 'reserved', qty)
redis.call('HINCRBY', buyers, user, qty)
redis.call('HSET', idem, user .. ':' .. key, order_id)
redis.call('HSET', reservations, order_id, user .. ':' .. qty .. ':R')
-- A turn that bought frees its room in the queue (queue.lua).
if s[8] then redis.call('ZREM', pending, user) end
return {'OK', order_id, qty, remaining - qty, 0, tonumber(s[7]) or 0}
