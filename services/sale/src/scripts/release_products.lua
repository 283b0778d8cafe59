-- Puts a checkout order's units back exactly once.
-- KEYS: product_order ; ARGV: the product-stock key prefix
-- Returns 1 when this call released, 0 otherwise.
local order = KEYS[1]
local lines = redis.call('HGETALL', order)
if #lines == 0 then return 0 end
for i = 1, #lines, 2 do
  redis.call('INCRBY', ARGV[1] .. lines[i], lines[i + 1])
end
redis.call('DEL', order)
return 1
