-- Puts a checkout order's units back exactly once; the record stays, marked X, so a
-- late repeat of the reservation changes nothing.
-- KEYS: product_order, product_stock... (one per product of the order)
-- ARGV: product_id... (aligned with the stock keys; read from the record beforehand,
--       which never changes except for its state)
-- Returns 1 when this call released, 0 otherwise.
local order = KEYS[1]
if redis.call('HGET', order, 'state') ~= 'R' then return 0 end
if redis.call('HLEN', order) ~= #ARGV + 1 then
  return redis.error_reply('release_products: product list does not match the order record')
end
for i = 1, #ARGV do
  redis.call('INCRBY', KEYS[i + 1], redis.call('HGET', order, ARGV[i]))
end
redis.call('HSET', order, 'state', 'X')
return 1
