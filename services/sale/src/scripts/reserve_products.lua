-- Cart checkout: every line or none. Lines arrive merged (one per product).
-- KEYS: product_order, product_stock... (one per line)
-- ARGV: product_id... , quantity... (n ids then n quantities)
-- Returns {"OK"} (also when this order was seen before, even if released since) or
-- {"SHORT", product_id} having changed nothing.
local order = KEYS[1]
if redis.call('EXISTS', order) == 1 then return {'OK'} end
local n = #KEYS - 1
for i = 1, n do
  local have = tonumber(redis.call('GET', KEYS[i + 1]) or '-1')
  if have < tonumber(ARGV[n + i]) then return {'SHORT', ARGV[i]} end
end
for i = 1, n do
  redis.call('DECRBY', KEYS[i + 1], ARGV[n + i])
  redis.call('HSET', order, ARGV[i], ARGV[n + i])
end
redis.call('HSET', order, 'state', 'R')
return {'OK'}
