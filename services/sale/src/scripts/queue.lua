-- A sale's waiting room, atomically: join, poll a place, or count (queue.rs explains
-- the rules; memory_queue.rs is the same state machine in-process).
-- KEYS: sale, queue (zset user -> place key), turns (hash user -> turn's end, every
--       admitted shopper), pending (zset user -> turn's end, admitted and not bought yet)
-- ARGV: op (JOIN|PLACE|COUNT), user, now_ms, random place key in [0, 2^50) for JOIN
-- Sale hash fields of the queue: q_pre_ms, q_rate, q_ttl_ms (the terms, set by load and
-- restore), q_admitted (shoppers admitted, by place), q_credit (admissions earned and not
-- used, in thousandths), q_last_ms, q_expired (turns that ended unused), q_seq.
-- Returns {'NO', code}, {'PRE_QUEUE', joined, opens_at_ms}, {'WAITING', position, units_left, rate, number},
-- {'ADMITTED', turn_end_ms, number}, {'EXPIRED', number}, {'SOLD_OUT'}, {'CLOSED'} or, for COUNT,
-- {'COUNTS', joined, admitted, expired, pending}.
local sale, queue, turns, pending = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local op, user, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- Places of shoppers who join after the opening: behind every pre-queue place.
local LATE = 1125899906842624 -- 2^50
-- Admissions per call at most (the rest stay earned for the next call).
local BATCH = 1000

local s = redis.call('HMGET', sale, 'q_rate', 'q_ttl_ms', 'q_pre_ms', 'opens_at_ms', 'closes_at_ms', 'closed',
  'remaining', 'reserved', 'halted', 'q_admitted', 'q_credit', 'q_last_ms')
-- Every sale hash has its opening (load.lua, restore.lua): none means no such sale.
if not s[4] then return {'NO', 'SALE_NOT_FOUND'} end
if not s[1] then return {'NO', 'NO_WAITING_ROOM'} end
local rate, ttl, pre, opens, closes = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4]), tonumber(s[5])
local closed = s[6] == '1' or now >= closes
local remaining, reserved, halted = tonumber(s[7]), tonumber(s[8]), s[9] == '1'
local admitted, credit, last = tonumber(s[10]) or 0, tonumber(s[11]) or 0, tonumber(s[12]) or opens
local sold_out = remaining == 0 and reserved == 0

-- Admission: `rate` a second from the opening, in place order, never more unbought turns
-- than units left; turns that end unbought free their room. Earned while shoppers wait
-- and there is room, not banked while there is none.
if now >= opens and not closed then
  if last < opens then last = opens end
  local ended = redis.call('ZREMRANGEBYSCORE', pending, '-inf', now)
  if ended > 0 then redis.call('HINCRBY', sale, 'q_expired', ended) end
  if halted or sold_out then
    credit = 0
  else
    credit = credit + math.max(0, now - last) * rate
    local room = math.min(remaining - redis.call('ZCARD', pending), redis.call('ZCARD', queue) - admitted)
    local n = math.min(math.floor(credit / 1000), room, BATCH)
    if n > 0 then
      local members = redis.call('ZRANGE', queue, admitted, admitted + n - 1)
      local ends = now + ttl
      for _, m in ipairs(members) do
        redis.call('HSET', turns, m, ends)
        redis.call('ZADD', pending, ends, m)
      end
      admitted = admitted + #members
      credit = credit - #members * 1000
    end
    if room <= n then credit = math.min(credit, 1000) end
  end
  redis.call('HSET', sale, 'q_admitted', admitted, 'q_credit', credit, 'q_last_ms', now)
end

if op == 'COUNT' then
  return {'COUNTS', redis.call('ZCARD', queue), admitted, tonumber(redis.call('HGET', sale, 'q_expired') or '0'),
    redis.call('ZCARD', pending)}
end

local rank = redis.call('ZRANK', queue, user)
if not rank then
  if op ~= 'JOIN' then return {'NO', 'NOT_IN_QUEUE'} end
  if closed then return {'NO', 'SALE_CLOSED'} end
  if now < opens - pre then return {'NO', 'QUEUE_NOT_OPEN'} end
  if sold_out then return {'NO', 'SOLD_OUT'} end
  local place = tonumber(ARGV[4])
  if now >= opens then place = LATE + redis.call('HINCRBY', sale, 'q_seq', 1) end
  redis.call('ZADD', queue, place, user)
  rank = redis.call('ZRANK', queue, user)
end
if now < opens then return {'PRE_QUEUE', redis.call('ZCARD', queue), opens} end
if rank < admitted then
  local ends = tonumber(redis.call('HGET', turns, user))
  if ends and ends > now then return {'ADMITTED', ends, rank + 1} end
  return {'EXPIRED', rank + 1}
end
if closed then return {'CLOSED'} end
if sold_out then return {'SOLD_OUT'} end
return {'WAITING', rank - admitted + 1, remaining, rate, rank + 1}
