"""The Redis ledger's Lua scripts: reserve, reserve a group, finish (settle/release) and status.

Each script first purges the expired holds of every window it touches (lazy and exact: no sweeper),
then acts on keys that all share one hash tag, so it is atomic and runs unchanged on Redis Cluster.
Key layout: :mod:`authz.budgets.redis_ledger`.
"""

from __future__ import annotations

# Purge expired holds of window i (keys w, z): shared prologue of every script.
_PURGE = """
local function purge(w, z, now)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #expired > 0 then
    local sum = 0
    for _, m in ipairs(expired) do sum = sum + tonumber(string.match(m, '|(%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    redis.call('HINCRBY', w, 'reserved', -sum)
  end
end
"""

# The reservation record is one string "<state>|<exp_ms>|<items>" (one GET/SET, not a hash: every
# redis.call costs about a microsecond inside a script, so the scripts make as few as they can).
# KEYS: record, then (w, z) per budget. ARGV: now_ms, exp_ms, record_ttl_ms, rid, items, n,
# then per budget: amount, limit, hard (1/0), window_ttl_s (0 = none).
RESERVE = (
    _PURGE
    + """
local now = tonumber(ARGV[1])
local rec = redis.call('GET', KEYS[1])
if rec then return {2, rec} end
local n = tonumber(ARGV[6])
for i = 1, n do
  local b = 6 + (i-1)*4
  purge(KEYS[2*i], KEYS[2*i+1], now)
  if ARGV[b+3] == '1' then
    local v = redis.call('HMGET', KEYS[2*i], 'spent', 'reserved')
    if (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0) + math.max(tonumber(ARGV[b+1]), 1) > tonumber(ARGV[b+2]) then
      return {0, i}
    end
  end
end
for i = 1, n do
  local b = 6 + (i-1)*4
  local w, z = KEYS[2*i], KEYS[2*i+1]
  local held = redis.call('HINCRBY', w, 'reserved', ARGV[b+1])
  redis.call('ZADD', z, ARGV[2], ARGV[4] .. '|' .. ARGV[b+1])
  local ttl = tonumber(ARGV[b+4])
  if ttl > 0 and held == tonumber(ARGV[b+1]) then  -- a new window (or an idle one): (re)arm its expiry
    redis.call('EXPIRE', w, ttl)
    redis.call('EXPIRE', z, ttl)
  end
end
redis.call('SET', KEYS[1], 'active|' .. ARGV[2] .. '|' .. ARGV[5], 'PX', ARGV[3])
return {1}
"""
)

# KEYS: record, then (w, z) per item. ARGV: now_ms, record_ttl_ms, to ('settled'|'released'), rid, n,
# then per item: reserved amount, actual amount.
FINISH = (
    _PURGE
    + """
local now = tonumber(ARGV[1])
local rec = redis.call('GET', KEYS[1])
if not rec then return {-1} end
if string.sub(rec, 1, 7) ~= 'active|' then return {0} end
local n = tonumber(ARGV[5])
local out = {1}
for i = 1, n do
  local w, z = KEYS[2*i], KEYS[2*i+1]
  local held = ARGV[6 + (i-1)*2]
  if redis.call('ZREM', z, ARGV[4] .. '|' .. held) == 1 then redis.call('HINCRBY', w, 'reserved', -tonumber(held)) end
  purge(w, z, now)
  local before = tonumber(redis.call('HGET', w, 'spent') or '0')
  local after = before
  local spend = tonumber(ARGV[7 + (i-1)*2])
  if spend > 0 then after = redis.call('HINCRBY', w, 'spent', spend) end
  out[#out+1] = before
  out[#out+1] = after
end
redis.call('SET', KEYS[1], ARGV[3] .. string.sub(rec, 7), 'PX', ARGV[2])
return out
"""
)

# Many reservations over the same budgets in one script (``reserve_many`` groups by budget set):
# the windows are purged and read once, each reservation is still all-or-none on its own, in order.
# KEYS: (w, z) per budget, then one record per reservation. ARGV: now_ms, record_ttl_ms, n, m,
# per budget: limit, hard, window_ttl_s; per reservation: rid, exp_ms, items, n amounts.
# Returns per reservation: '' (reserved), 'x<i>' (budget i exhausted) or the existing record.
RESERVE_GROUP = (
    _PURGE
    + """
local now = tonumber(ARGV[1])
local n, m = tonumber(ARGV[3]), tonumber(ARGV[4])
local used, added, members = {}, {}, {}
for i = 1, n do
  purge(KEYS[2*i-1], KEYS[2*i], now)
  local v = redis.call('HMGET', KEYS[2*i-1], 'spent', 'reserved')
  used[i] = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
  added[i] = 0
  members[i] = {}
end
local out = {}
local base = 4 + 3*n
for j = 1, m do
  local rk = KEYS[2*n + j]
  local a = base + (j-1)*(3+n)
  local rec = redis.call('GET', rk)
  if rec then
    out[j] = rec
  else
    local refused = nil
    for i = 1, n do
      local b = 4 + (i-1)*3
      if ARGV[b+2] == '1' and used[i] + math.max(tonumber(ARGV[a+3+i]), 1) > tonumber(ARGV[b+1]) then
        refused = i; break
      end
    end
    if refused then
      out[j] = 'x' .. refused
    else
      for i = 1, n do
        local amount = tonumber(ARGV[a+3+i])
        used[i] = used[i] + amount
        added[i] = added[i] + amount
        local ms = members[i]
        ms[#ms+1] = ARGV[a+2]
        ms[#ms+1] = ARGV[a+1] .. '|' .. ARGV[a+3+i]
      end
      redis.call('SET', rk, 'active|' .. ARGV[a+2] .. '|' .. ARGV[a+3], 'PX', ARGV[2])
      out[j] = ''
    end
  end
end
for i = 1, n do
  if #members[i] > 0 then
    local w, z = KEYS[2*i-1], KEYS[2*i]
    local held = redis.call('HINCRBY', w, 'reserved', added[i])
    redis.call('ZADD', z, unpack(members[i]))
    local ttl = tonumber(ARGV[4 + (i-1)*3 + 3])
    if ttl > 0 and held == added[i] then redis.call('EXPIRE', w, ttl); redis.call('EXPIRE', z, ttl) end
  end
end
return out
"""
)

# KEYS: w, z. ARGV: now_ms.
STATUS = (
    _PURGE
    + """
purge(KEYS[1], KEYS[2], tonumber(ARGV[1]))
local v = redis.call('HMGET', KEYS[1], 'spent', 'reserved')
return {tonumber(v[1]) or 0, tonumber(v[2]) or 0}
"""
)
