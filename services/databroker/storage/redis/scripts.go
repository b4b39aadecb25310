package redis

import goredis "github.com/redis/go-redis/v9"

// Key layout, all under one hash tag so that Redis Cluster keeps every key
// in one slot and the scripts below may touch them together ({P} stands for
// the prefix, e.g. "{gatehouse}"):
//
//	{P}:server_version  string  random, set once by whoever comes first
//	{P}:version         string  record version counter (INCR)
//	{P}:pruned          string  highest version pruned from the change log
//	{P}:changes         zset    change log: score version, member encoded change
//	{P}:types           set     every type seen
//	{P}:records:<type>  hash    id -> encoded live record
//	{P}:order:<type>    zset    id scored by its version (oldest first, for TTL and capacity)
//	{P}:options         hash    type -> databroker Options protobuf
//	{P}:lease:<name>    string  "<expiry µs>|<holder>"
//
// An encoded record is "<version>|<modified µs>|<deleted µs or 0>|" followed
// by the protobuf bytes of a Record holding only type, id and data. Times
// come from the databroker (storage.Store's clock); versions from Redis.
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
local function field(val, n)
  local s = 1
  for _ = 1, n - 1 do s = string.find(val, '|', s, true) + 1 end
  local e = string.find(val, '|', s, true)
  return string.sub(val, s, e - 1)
end
`

// appendScript writes a batch. ARGV[3] is the modified time (µs), ARGV[4]
// the write count, then five arguments per write: type, id, "1" for a
// delete, the version the record must have ("" for any; "0" for absent),
// data bytes. It returns {server_version, version...} or the error
// CONFLICT, having written nothing.
var appendScript = goredis.NewScript(prelude + `
local sv = server_version()
local n = tonumber(ARGV[4])
for i = 0, n - 1 do
  local b = 5 + i * 5
  local want = ARGV[b + 3]
  if want ~= '' then
    local cur = redis.call('HGET', P..':records:'..ARGV[b], ARGV[b + 1])
    local have = '0'
    if cur then have = field(cur, 1) end
    if have ~= want then return redis.error_reply('CONFLICT') end
  end
end
local now = ARGV[3]
local out = {sv}
for i = 0, n - 1 do
  local b = 5 + i * 5
  local typ, id, del = ARGV[b], ARGV[b + 1], ARGV[b + 2] == '1'
  local v = redis.call('INCR', P..':version')
  local rkey = P..':records:'..typ
  local okey = P..':order:'..typ
  local d = '0'
  if del then
    d = now
    redis.call('HDEL', rkey, id)
    redis.call('ZREM', okey, id)
  end
  local val = fmt(v)..'|'..now..'|'..d..'|'..ARGV[b + 4]
  if not del then
    redis.call('HSET', rkey, id, val)
    redis.call('ZADD', okey, v, id)
  end
  redis.call('ZADD', P..':changes', v, val)
  redis.call('SADD', P..':types', typ)
  out[#out + 1] = fmt(v)
end
redis.call('PUBLISH', P..':changes', redis.call('GET', P..':version'))
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

// pruneScript drops changes modified before ARGV[3] (µs) and all but the
// newest ARGV[4], at most ARGV[5] per call (Redis is never blocked for
// long; the caller calls again while it returns the budget). It is
// idempotent, so replicas may run it concurrently.
var pruneScript = goredis.NewScript(prelude + `
server_version()
local ckey = P..':changes'
local budget = tonumber(ARGV[5])
local cut = 0
local over = redis.call('ZCARD', ckey) - tonumber(ARGV[4])
if over > 0 then
  local last = redis.call('ZRANGE', ckey, over - 1, over - 1, 'WITHSCORES')
  cut = tonumber(last[2])
  redis.call('ZREMRANGEBYSCORE', ckey, '-inf', cut)
end
local cutoff = tonumber(ARGV[3])
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
return removed
`)

// swapLeaseScript sets KEYS[1] to ARGV[2] ("" deletes it) when it holds
// ARGV[1] ("" for absent): 1 when it did, 0 when the value differed.
var swapLeaseScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
`)
