"""The Redis store's Lua scripts: check-and-reserve and settle, each one atomic script call.

They implement exactly what `gateway.store.memory` does in Python (the same test bodies run against
both). Arguments are flat: ARGV[1] = now (unix ms), ARGV[2] = number of ops, then a fixed stride of
values per op. Numbers are written with '%.17g' so TATs in ms keep sub-microsecond precision.

Reserve op stride 7: kind, then
  'r' (GCRA, 1 key):   limit, period_ms, cost
  's' (slot, 1 key):   limit, ttl_ms, rid
  'b' (budget, 2 keys: hash, reservation zset): limit, amount, rid, ttl_ms, expire_at_ms, roll_ms
Settle op stride 5: kind, then
  'r': limit, period_ms, delta      's': rid      'b': rid, actual, expire_at_ms, roll_ms
"""

_PRELUDE = """
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local EPS = 1e-6
local DAY = 86400000
local NB = 60
local function f(x) return string.format('%.17g', x) end

-- Drop expired reservations and old rolling buckets; return spent, reserved, live buckets.
local function budget_load(h, z, roll)
  local dead = redis.call('ZRANGEBYSCORE', z, '-inf', f(now))
  if #dead > 0 then
    local fields = {}
    for j = 1, #dead do fields[j] = 'r:' .. dead[j] end
    local amounts = redis.call('HMGET', h, unpack(fields))
    local sum = 0
    for j = 1, #amounts do if amounts[j] then sum = sum + tonumber(amounts[j]) end end
    redis.call('HDEL', h, unpack(fields))
    redis.call('ZREMRANGEBYSCORE', z, '-inf', f(now))
    if redis.call('ZCARD', z) == 0 then
      redis.call('HSET', h, 'reserved', '0')
    else
      redis.call('HSET', h, 'reserved', f((tonumber(redis.call('HGET', h, 'reserved')) or 0) - sum))
    end
  end
  local spent = 0
  local buckets = {}
  if roll > 0 then
    local size = math.max(roll / NB, 1000)
    local oldest = math.floor(now / size) - NB
    local all = redis.call('HGETALL', h)
    for j = 1, #all, 2 do
      local k = all[j]
      if string.sub(k, 1, 2) == 'b:' then
        local idx = tonumber(string.sub(k, 3))
        if idx < oldest then
          redis.call('HDEL', h, k)
        else
          local v = tonumber(all[j + 1])
          spent = spent + v
          buckets[#buckets + 1] = {idx, v}
        end
      end
    end
  else
    spent = tonumber(redis.call('HGET', h, 'spent')) or 0
  end
  return spent, tonumber(redis.call('HGET', h, 'reserved')) or 0, buckets
end

local function budget_expire(h, z, expire_at, roll, floor_at)
  local at
  if roll > 0 then at = now + roll + 2 * math.max(roll / NB, 1000) else at = expire_at + DAY end
  if floor_at > at then at = floor_at end
  -- Relative to the caller's clock (the same clock the counters use), not Redis's.
  local ttl = math.max(math.ceil(at - now), 1000)
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', z, ttl)
end
"""

RESERVE = (
    _PRELUDE
    + """
local out = {}
local todo = {}
local ok_all = true
local ki = 1
for i = 0, n - 1 do
  local b = 2 + i * 7
  local kind = ARGV[b + 1]
  local ok, left, reset, retry = false, 0, 0, 0
  if kind == 'r' then
    local key = KEYS[ki]; ki = ki + 1
    local limit, period, cost = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    if limit <= 0 then
      retry = -1
    else
      local t = period / limit
      local tat = tonumber(redis.call('GET', key)) or now
      if tat < now then tat = now end
      local new = tat + cost * t
      if new - now <= period + EPS then
        ok, left, reset = true, math.floor((period - (new - now)) / t + EPS), new - now
        todo[#todo + 1] = {'r', key, new}
      else
        if cost <= limit then retry = new - period - now else retry = -1 end
        left = math.max(0, math.floor((period - (tat - now)) / t + EPS))
        reset = tat - now
      end
    end
  elseif kind == 's' then
    local key = KEYS[ki]; ki = ki + 1
    local limit, ttl, rid = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), ARGV[b + 4]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', f(now))
    local used = redis.call('ZCARD', key)
    if used < limit then
      ok, left = true, limit - used - 1
      todo[#todo + 1] = {'s', key, rid, ttl}
    elseif limit <= 0 then retry = -1 else retry = 1000 end
  else
    local h, z = KEYS[ki], KEYS[ki + 1]; ki = ki + 2
    local limit, amount, rid = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), ARGV[b + 4]
    local ttl, expire_at, roll = tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
    if limit <= 0 or amount > limit then
      left, retry = math.max(limit, 0), -1
    else
      local spent, reserved, buckets = budget_load(h, z, roll)
      local used = spent + reserved
      if roll > 0 then reset = roll else reset = expire_at - now end
      if used + amount <= limit * (1 + 1e-12) then
        ok, left = true, limit - used - amount
        todo[#todo + 1] = {'b', h, z, rid, amount, reserved + amount, ttl, expire_at, roll}
      else
        left = math.max(limit - used, 0)
        if roll <= 0 then
          retry = reset
        else
          local size = math.max(roll / NB, 1000)
          local need = used + amount - limit
          retry = 1000
          table.sort(buckets, function(x, y) return x[1] < y[1] end)
          for j = 1, #buckets do
            need = need - buckets[j][2]
            if need <= 0 then retry = (buckets[j][1] + NB + 1) * size - now; break end
          end
          if retry < 1 then retry = 1 end
        end
      end
    end
  end
  if not ok then ok_all = false end
  out[#out + 1] = ok and '1' or '0'
  out[#out + 1] = f(left)
  out[#out + 1] = f(reset)
  out[#out + 1] = f(retry)
end
if ok_all then
  for i = 1, #todo do
    local w = todo[i]
    if w[1] == 'r' then
      redis.call('SET', w[2], f(w[3]), 'PX', math.ceil(w[3] - now) + 1000)
    elseif w[1] == 's' then
      redis.call('ZADD', w[2], f(now + w[4]), w[3])
      redis.call('PEXPIRE', w[2], math.ceil(w[4]) + 1000)
    else
      local h, z, rid = w[2], w[3], w[4]
      redis.call('HSET', h, 'r:' .. rid, f(w[5]), 'reserved', f(w[6]))
      redis.call('ZADD', z, f(now + w[7]), rid)
      budget_expire(h, z, w[8], w[9], now + w[7] + 1000)
    end
  end
end
return out
"""
)

SETTLE = (
    _PRELUDE
    + """
local ki = 1
for i = 0, n - 1 do
  local b = 2 + i * 5
  local kind = ARGV[b + 1]
  if kind == 'r' then
    local key = KEYS[ki]; ki = ki + 1
    local limit, period, delta = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
    if limit > 0 then
      local move = delta * period / limit
      local tat = tonumber(redis.call('GET', key)) or now
      if move > 0 then
        if tat < now then tat = now end
        tat = tat + move
        redis.call('SET', key, f(tat), 'PX', math.ceil(tat - now) + 1000)
      elseif tat + move > now then
        tat = tat + move
        redis.call('SET', key, f(tat), 'PX', math.ceil(tat - now) + 1000)
      else
        redis.call('DEL', key)
      end
    end
  elseif kind == 's' then
    redis.call('ZREM', KEYS[ki], ARGV[b + 2]); ki = ki + 1
  else
    local h, z = KEYS[ki], KEYS[ki + 1]; ki = ki + 2
    local rid, actual = ARGV[b + 2], tonumber(ARGV[b + 3])
    local expire_at, roll = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
    local spent, reserved = budget_load(h, z, roll)
    local held = redis.call('HGET', h, 'r:' .. rid)
    if held then
      redis.call('HDEL', h, 'r:' .. rid)
      redis.call('ZREM', z, rid)
      if redis.call('ZCARD', z) == 0 then reserved = 0 else reserved = reserved - tonumber(held) end
      redis.call('HSET', h, 'reserved', f(reserved))
    end
    if actual ~= 0 then
      if roll > 0 then
        local idx = math.floor(now / math.max(roll / NB, 1000))
        redis.call('HINCRBYFLOAT', h, 'b:' .. string.format('%d', idx), f(actual))
      else
        redis.call('HINCRBYFLOAT', h, 'spent', f(actual))
      end
    end
    budget_expire(h, z, expire_at, roll, 0)
  end
end
return 1
"""
)
