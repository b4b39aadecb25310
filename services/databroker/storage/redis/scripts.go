package redis

import goredis "github.com/redis/go-redis/v9"

// Key layout, all under one hash tag so that Redis Cluster keeps every key
// in one slot and the scripts below may touch them together ({P} stands for
// the prefix, e.g. "{gatehouse}"):
//
//	{P}:server_version  string  random, set once (SET NX) by whoever comes first
//	{P}:version         string  record version counter (INCR)
//	{P}:pruned          string  highest version pruned from the change log
//	{P}:changes         zset    change log: score version, member encoded change
//	{P}:types           set     every type seen
//	{P}:records:<type>  hash    id -> encoded live record
//	{P}:order:<type>    zset    id scored by its version (oldest first, for TTL and capacity)
//	{P}:options         hash    type -> databroker Options protobuf
//	{P}:ttl             hash    type -> ttl in milliseconds
//	{P}:capacity        hash    type -> capacity
//	{P}:lease:<name>    string  lease holder id, with PX expiry
//
// An encoded record is "<version>|<modified µs>|<deleted µs or 0>|" followed
// by the protobuf bytes of a Record holding only type, id and data. The
// scripts assign version and times (Redis TIME, so every replica agrees)
// without decoding protobuf, and the change member is unique by version.
//
// Every write publishes the latest version on the channel {P}:changes.

// prelude is shared by every script. ARGV[1] is the key prefix and
// ARGV[2] a fresh server version to install when the store has none
// (first start, or a wiped Redis).
const prelude = `
local P = ARGV[1]
local function fmt(n) return string.format('%.0f', n) end
local function server_version()
  local sv = redis.call('GET', P..':server_version')
  if not sv then
    redis.call('SET', P..':server_version', ARGV[2])
    sv = ARGV[2]
  end
  return sv
end
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function field(val, n)
  local s = 1
  for _ = 1, n - 1 do s = string.find(val, '|', s, true) + 1 end
  local e = string.find(val, '|', s, true)
  return string.sub(val, s, e - 1)
end
local function payload(val)
  local i = string.find(val, '|', 1, true)
  i = string.find(val, '|', i + 1, true)
  i = string.find(val, '|', i + 1, true)
  return string.sub(val, i + 1)
end
local function write(typ, id, data, del, now)
  local v = redis.call('INCR', P..':version')
  local rkey = P..':records:'..typ
  local okey = P..':order:'..typ
  local d = '0'
  if del then
    d = fmt(now)
    redis.call('HDEL', rkey, id)
    redis.call('ZREM', okey, id)
  end
  local val = fmt(v)..'|'..fmt(now)..'|'..d..'|'..data
  if not del then
    redis.call('HSET', rkey, id, val)
    redis.call('ZADD', okey, v, id)
  end
  redis.call('ZADD', P..':changes', v, val)
  redis.call('SADD', P..':types', typ)
  return v
end
local function evict(typ, now)
  local cap = tonumber(redis.call('HGET', P..':capacity', typ) or '0') or 0
  if cap <= 0 then return 0 end
  local okey = P..':order:'..typ
  local over = redis.call('ZCARD', okey) - cap
  if over <= 0 then return 0 end
  local ids = redis.call('ZRANGE', okey, 0, over - 1)
  for _, id in ipairs(ids) do
    local old = redis.call('HGET', P..':records:'..typ, id)
    local data = ''
    if old then data = payload(old) end
    write(typ, id, data, true, now)
  end
  return #ids
end
local function publish()
  redis.call('PUBLISH', P..':changes', redis.call('GET', P..':version') or '0')
end
`

// putScript writes a batch. ARGV[3] is the record count, then five
// arguments per record: type, id, "1" for a delete, the version the
// record must have ("" for any; "0" for absent), data bytes. It returns
// {server_version, modified µs, version...} or the error CONFLICT.
var putScript = goredis.NewScript(prelude + `
local sv = server_version()
local n = tonumber(ARGV[3])
for i = 0, n - 1 do
  local b = 4 + i * 5
  local want = ARGV[b + 3]
  if want ~= '' then
    local cur = redis.call('HGET', P..':records:'..ARGV[b], ARGV[b + 1])
    local have = '0'
    if cur then have = field(cur, 1) end
    if have ~= want then return redis.error_reply('CONFLICT') end
  end
end
local now = now_us()
local out = {sv, fmt(now)}
local touched = {}
for i = 0, n - 1 do
  local b = 4 + i * 5
  out[#out + 1] = fmt(write(ARGV[b], ARGV[b + 1], ARGV[b + 4], ARGV[b + 2] == '1', now))
  touched[ARGV[b]] = true
end
for typ in pairs(touched) do evict(typ, now) end
publish()
return out
`)

// infoScript returns {server_version, pruned, latest}.
var infoScript = goredis.NewScript(prelude + `
return {server_version(), redis.call('GET', P..':pruned') or '0', redis.call('GET', P..':version') or '0'}
`)

// changesScript reads the change log after ARGV[4], at most ARGV[5]
// entries, for server version ARGV[3]. It returns {"MISMATCH", sv},
// {"TOOOLD", pruned} or {"OK", latest, {changes...}}. Asked for changes
// after a version above the latest, it replaces the server version.
var changesScript = goredis.NewScript(prelude + `
local sv = server_version()
if sv ~= ARGV[3] then return {'MISMATCH', sv} end
local pruned = redis.call('GET', P..':pruned') or '0'
if tonumber(ARGV[4]) < tonumber(pruned) then return {'TOOOLD', pruned} end
local latest = redis.call('GET', P..':version') or '0'
if tonumber(ARGV[4]) > tonumber(latest) then
  -- The caller saw versions this store no longer has: Redis lost writes
  -- (a crash before fsync, a failover to a lagging replica) and would hand
  -- their version numbers to new writes. A new server version makes every
  -- client start over from SyncLatest instead of skipping those writes.
  redis.call('SET', P..':server_version', ARGV[2])
  return {'MISMATCH', ARGV[2]}
end
return {'OK', latest, redis.call('ZRANGEBYSCORE', P..':changes', '(' .. ARGV[4], '+inf', 'LIMIT', 0, tonumber(ARGV[5]))}
`)

// setOptionsScript stores options for type ARGV[3]: protobuf ARGV[4], ttl
// ms ARGV[5] (0: none), capacity ARGV[6] (0: none); it applies capacity.
var setOptionsScript = goredis.NewScript(prelude + `
server_version()
local typ = ARGV[3]
redis.call('HSET', P..':options', typ, ARGV[4])
if ARGV[5] ~= '0' then redis.call('HSET', P..':ttl', typ, ARGV[5]) else redis.call('HDEL', P..':ttl', typ) end
if ARGV[6] ~= '0' then redis.call('HSET', P..':capacity', typ, ARGV[6]) else redis.call('HDEL', P..':capacity', typ) end
redis.call('SADD', P..':types', typ)
local n = evict(typ, now_us())
if n > 0 then publish() end
return n
`)

// sweepScript deletes expired records (TTL), applies capacity and prunes
// the change log of entries older than ARGV[3] ms and beyond ARGV[4]
// entries. It does at most ARGV[5] deletions of each kind per call, so
// Redis is never blocked for long; the next sweep goes on. It is
// idempotent, so replicas may run it concurrently.
var sweepScript = goredis.NewScript(prelude + `
server_version()
local now = now_us()
local budget = tonumber(ARGV[5])
local changed = 0
local ttls = redis.call('HGETALL', P..':ttl')
for i = 1, #ttls, 2 do
  local typ = ttls[i]
  local ttl = tonumber(ttls[i + 1]) * 1000
  local okey = P..':order:'..typ
  local done = false
  while not done and changed < budget do
    local ids = redis.call('ZRANGE', okey, 0, 99)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      local val = redis.call('HGET', P..':records:'..typ, id)
      if not val then
        redis.call('ZREM', okey, id)
      elseif tonumber(field(val, 2)) + ttl > now then
        done = true
        break
      else
        write(typ, id, payload(val), true, now)
        changed = changed + 1
      end
    end
  end
end
local caps = redis.call('HGETALL', P..':capacity')
for i = 1, #caps, 2 do changed = changed + evict(caps[i], now) end
if changed > 0 then publish() end

local ckey = P..':changes'
local cut = 0
local over = redis.call('ZCARD', ckey) - tonumber(ARGV[4])
if over > 0 then
  local last = redis.call('ZRANGE', ckey, over - 1, over - 1, 'WITHSCORES')
  cut = tonumber(last[2])
  redis.call('ZREMRANGEBYSCORE', ckey, '-inf', cut)
end
local cutoff = now - tonumber(ARGV[3]) * 1000
local removed = 0
while removed < budget do
  local vals = redis.call('ZRANGE', ckey, 0, 99, 'WITHSCORES')
  if #vals == 0 then break end
  local stop = false
  local batch_cut = 0
  for j = 1, #vals, 2 do
    if tonumber(field(vals[j], 2)) >= cutoff then stop = true break end
    batch_cut = tonumber(vals[j + 1])
    removed = removed + 1
  end
  if batch_cut > 0 then
    redis.call('ZREMRANGEBYSCORE', ckey, '-inf', batch_cut)
    if batch_cut > cut then cut = batch_cut end
  end
  if stop then break end
end
local pruned = tonumber(redis.call('GET', P..':pruned') or '0')
if cut > pruned then redis.call('SET', P..':pruned', fmt(cut)) end
return changed
`)

// acquireScript takes lease ARGV[3] for id ARGV[4] for ARGV[5] ms unless
// another id holds it: 1 on success, 0 when held.
var acquireScript = goredis.NewScript(`
local k = ARGV[1]..':lease:'..ARGV[3]
local cur = redis.call('GET', k)
if cur and cur ~= ARGV[4] then return 0 end
redis.call('SET', k, ARGV[4], 'PX', ARGV[5])
return 1
`)

// renewScript extends lease ARGV[3] held by ARGV[4] to ARGV[5] ms: 1 on
// success, 0 when nobody holds it, -1 when another id does.
var renewScript = goredis.NewScript(`
local k = ARGV[1]..':lease:'..ARGV[3]
local cur = redis.call('GET', k)
if not cur then return 0 end
if cur ~= ARGV[4] then return -1 end
redis.call('PEXPIRE', k, ARGV[5])
return 1
`)

// releaseScript deletes lease ARGV[3] when ARGV[4] holds it.
var releaseScript = goredis.NewScript(`
local k = ARGV[1]..':lease:'..ARGV[3]
if redis.call('GET', k) == ARGV[4] then redis.call('DEL', k) return 1 end
return 0
`)
