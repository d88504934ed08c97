/**
 * The Lua scripts of the Redis store: each operation on a session is one script over that
 * session's two keys (KEYS[1] the metadata hash, KEYS[2] the variables hash, one slot), so it
 * is atomic in a standalone Redis and in a Redis Cluster alike.
 *
 * Every session script takes ARGV[1] = the caller's `now` (ms) and ARGV[2] = the safety-net
 * margin (ms), and answers an array that starts with the same four items:
 *   status, deadline (when this call moved it, else nil), tok, cls
 * so that the caller can bring the deadline index along. Scripts that delete a session append
 * what its indexes held ({@link REMAINS_DOC}).
 *
 * Ids, names and values reach Lua only as ARGV, never spliced into a script's text: no byte of
 * a client's input can become code (the injection PHPLib's SQL session table was open to).
 *
 * Time is always the caller's `now`: no script reads Redis's clock. Key expiry (PEXPIRE) is only
 * a safety net for memory, set `margin` ms past the deadline, relative to `now` so that the
 * Redis host's clock never decides whether a session is live.
 */
import { createHash } from 'node:crypto';

/** A script and its SHA1, for EVALSHA. */
export interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, body: string, prelude = PRELUDE): Script {
  const source = `${prelude}\n${body}`;
  return { name, source, sha: createHash('sha1').update(source).digest('hex') };
}

/** The tail appended by scripts that delete a session: tok, cls, user, ut, then (name, tok, value)*. */
export const REMAINS_DOC = 'tok, cls, user, ut, (name, tok, value)*';

/** How long a regenerate may hold a session frozen before others take it back, in ms. */
export const MOVE_TIMEOUT_MS = 10_000;

const PRELUDE = `
local M, V = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local margin = tonumber(ARGV[2])
local INF = math.huge

local function fmt(x)
  if x == INF then return 'inf' end
  return string.format('%.0f', x)
end

local function deadlineOf(touched, timeout, expires)
  local d = INF
  if timeout > 0 then d = touched + timeout * 1000 end
  if expires > 0 and expires < d then d = expires end
  return d
end

-- The stored session, expired or not; nil when there is none.
local function read()
  local f = redis.call('HMGET', M, 'touched', 'timeout', 'expires', 'ro', 'mv', 'mvat', 'tok', 'cls')
  if not f[1] then return nil end
  local s = { touched = tonumber(f[1]), timeout = tonumber(f[2]), expires = tonumber(f[3]),
              ro = f[4] == '1', mv = f[5], tok = f[7], cls = f[8] }
  s.deadline = deadlineOf(s.touched, s.timeout, s.expires)
  s.live = now < s.deadline
  -- Frozen by a regenerate in progress; a marker older than the move timeout is void.
  s.moving = f[5] ~= false and now - tonumber(f[6]) < ${MOVE_TIMEOUT_MS}
  return s
end

-- The live session, or nil: an expired one is absent whether or not the sweep has run.
local function live()
  local s = read()
  if s and s.live then return s end
  return nil
end

-- The memory safety net: the keys outlive the deadline by the margin, counted from now.
local function keepUntil(d)
  if d == INF then
    redis.call('PERSIST', M)
    redis.call('PERSIST', V)
  else
    local ms = fmt(math.max(d - now, 0) + margin)
    redis.call('PEXPIRE', M, ms)
    redis.call('PEXPIRE', V, ms)
  end
end

-- The safety net for a variables hash this call created (HSET keeps the expiry of one that was there).
local function keepNewVars(s)
  if s.deadline ~= INF then redis.call('PEXPIRE', V, fmt(math.max(s.deadline - now, 0) + margin)) end
end

-- Records an access at most once a second, never on a read-only or frozen session.
-- The new deadline as text when it moved, else false.
local function touchIfDue(s)
  if s.ro or s.moving or now - s.touched < 1000 then return false end
  redis.call('HSET', M, 'touched', ARGV[1])
  s.touched = now
  local d = deadlineOf(now, s.timeout, s.expires)
  if d == s.deadline then return false end
  s.deadline = d
  keepUntil(d)
  return fmt(d)
end

-- The live session if it may be written, else nil and why.
local function writable()
  local s = live()
  if not s then return nil, 'nosession' end
  if s.ro or s.moving then return nil, 'readonly' end
  -- A stale move marker: clearing it makes the late regenerate undo itself instead of
  -- finishing with a copy that misses this write.
  if s.mv then redis.call('HDEL', M, 'mv', 'mvat') end
  return s
end

local function append(out, list)
  for i = 1, #list do out[#out + 1] = list[i] end
  return out
end

local function hsetFrom(key, list, first)
  local i = first
  while i <= #list do
    local last = math.min(i + 999, #list)
    redis.call('HSET', key, unpack(list, i, last))
    i = last + 1
  end
end

-- What the indexes hold for the stored session, for the caller to remove.
local function remains()
  local f = redis.call('HMGET', M, 'tok', 'cls', 'user', 'ut')
  local out = { f[1], f[2], f[3], f[4] }
  for _, field in ipairs(redis.call('HKEYS', M)) do
    if string.sub(field, 1, 2) == 'x:' then
      local name = string.sub(field, 3)
      out[#out + 1] = name
      out[#out + 1] = redis.call('HGET', M, field)
      out[#out + 1] = redis.call('HGET', V, name)
    end
  end
  return out
end

-- Writes a new session from ARGV[3..]: tok, cls, data, hasUser, user, timeout, expires,
-- created ('' for now), fence, lock key ('' for none), lock until, n, n indexed names, then
-- name/value pairs. Replaces whatever was stored; returns the deadline and the old remains.
local function insert()
  local old = false
  if redis.call('EXISTS', M) == 1 then old = remains() end
  redis.call('DEL', M, V)
  local tok = ARGV[3]
  local f = { 'tok', tok, 'cls', ARGV[4], 'data', ARGV[5], 'touched', ARGV[1],
              'timeout', ARGV[8], 'expires', ARGV[9], 'fence', ARGV[11],
              'created', ARGV[10] ~= '' and ARGV[10] or ARGV[1] }
  if ARGV[6] == '1' then append(f, { 'user', ARGV[7], 'ut', tok }) end
  if ARGV[12] ~= '' then append(f, { 'lk', ARGV[12], 'lu', ARGV[13] }) end
  local n = tonumber(ARGV[14])
  for i = 1, n do append(f, { 'x:' .. ARGV[14 + i], tok }) end
  hsetFrom(M, f, 1)
  hsetFrom(V, ARGV, 15 + n)
  local d = deadlineOf(now, tonumber(ARGV[8]), tonumber(ARGV[9]))
  keepUntil(d)
  return d, old
end

-- A changed indexed variable: its name, its old value and old token (false when none).
local function retoken(out, name, before, tok)
  local field = 'x:' .. name
  append(out, { name, before, redis.call('HGET', M, field) })
  if tok then redis.call('HSET', M, field, tok) else redis.call('HDEL', M, field) end
end
`;

/** Creates unless live (replacing an expired one); also places a regenerated copy. */
export const CREATE = script(
  'create',
  `
local s = read()
if s and s.live then return { 'exists' } end
local d, old = insert()
local out = { 'ok', fmt(d), ARGV[3], ARGV[4] }
if old then append(out, old) end
return out
`,
);

/** Sets the data, or creates the session (insert layout) when none is live. */
export const SET_DATA = script(
  'setdata',
  `
local s = read()
if s and s.live then
  if s.ro or s.moving then return { 'readonly' } end
  if s.mv then redis.call('HDEL', M, 'mv', 'mvat') end
  local d = touchIfDue(s)
  redis.call('HSET', M, 'data', ARGV[5])
  return { 'updated', d, s.tok, s.cls }
end
local d, old = insert()
local out = { 'created', fmt(d), ARGV[3], ARGV[4] }
if old then append(out, old) end
return out
`,
);

/** ARGV[3] touch, ARGV[4] with variables. Answers the record's fields, then variable pairs. */
export const GET = script(
  'get',
  `
local s = live()
if not s then return { 'nosession' } end
local d = false
if ARGV[3] == '1' then d = touchIfDue(s) end
local f = redis.call('HMGET', M, 'data', 'user', 'created', 'timeout', 'expires', 'lk', 'lu')
local out = { 'ok', d, s.tok, s.cls, f[1], f[2], f[3], f[4], f[5], fmt(s.touched),
              (s.ro or s.moving) and '1' or '0', f[6], f[7] }
if ARGV[4] == '1' then append(out, redis.call('HGETALL', V)) end
return out
`,
);

/** ARGV[3] the name. Touches. */
export const GET_VAR = script(
  'getvar',
  `
local s = live()
if not s then return { 'nosession' } end
local d = touchIfDue(s)
return { 'ok', d, s.tok, s.cls, redis.call('HGET', V, ARGV[3]) }
`,
);

/**
 * ARGV[3] maxVars, ARGV[4] token, ARGV[5] n, then n triples (indexed '1'/'0', name, value) with
 * distinct names. Answers (name, old value, old token)* of the indexed names whose value changed.
 */
export const SET_VARS = script(
  'setvars',
  `
local s, why = writable()
if not s then return { why } end
local d = touchIfDue(s)
local n = tonumber(ARGV[5])
local max = tonumber(ARGV[3])
local count = redis.call('HLEN', V)
if count + n > max then
  local added = 0
  for i = 0, n - 1 do
    if redis.call('HEXISTS', V, ARGV[7 + 3 * i]) == 0 then added = added + 1 end
  end
  if count + added > max then return { 'limit', d, s.tok, s.cls } end
end
local out = { 'ok', d, s.tok, s.cls }
local fields = {}
for i = 0, n - 1 do
  local name, value = ARGV[7 + 3 * i], ARGV[8 + 3 * i]
  if ARGV[6 + 3 * i] == '1' then
    local before = redis.call('HGET', V, name)
    if before ~= value then retoken(out, name, before, ARGV[4]) end
  end
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
hsetFrom(V, fields, 1)
if count == 0 then keepNewVars(s) end
return out
`,
);

/** ARGV[3] n, then n pairs (indexed, name), distinct. Answers the count, then changes. */
export const UNSET_VARS = script(
  'unsetvars',
  `
local s, why = writable()
if not s then return { why } end
local d = touchIfDue(s)
local out = { 'ok', d, s.tok, s.cls, 0 }
local removed = 0
for i = 0, tonumber(ARGV[3]) - 1 do
  local name = ARGV[5 + 2 * i]
  local before = redis.call('HGET', V, name)
  if before then
    redis.call('HDEL', V, name)
    removed = removed + 1
    if ARGV[4 + 2 * i] == '1' then retoken(out, name, before, false) end
  end
end
out[5] = removed
return out
`,
);

/**
 * ARGV[3] maxVars, ARGV[4] name, ARGV[5] by, ARGV[6] '1' if by is a 64-bit integer, ARGV[7]
 * indexed, ARGV[8] token. HINCRBY parses like parseInt64 (Redis's string2ll: canonical only) and
 * refuses overflow, so its error is exactly NOTINT. Answers the new value as text, then changes.
 */
export const INC_VAR = script(
  'incvar',
  `
local s, why = writable()
if not s then return { why } end
local d = touchIfDue(s)
if ARGV[6] ~= '1' then return { 'notint', d, s.tok, s.cls } end
local name = ARGV[4]
local before = redis.call('HGET', V, name)
local count = -1
if not before then
  count = redis.call('HLEN', V)
  if count >= tonumber(ARGV[3]) then return { 'limit', d, s.tok, s.cls } end
end
local r = redis.pcall('HINCRBY', V, name, ARGV[5])
if type(r) == 'table' and r.err then return { 'notint', d, s.tok, s.cls } end
local after = redis.call('HGET', V, name)
if count == 0 then keepNewVars(s) end
local out = { 'ok', d, s.tok, s.cls, after }
if ARGV[7] == '1' and before ~= after then retoken(out, name, before, ARGV[8]) end
return out
`,
);

/**
 * ARGV[3] '1' to set timeout ARGV[4]; ARGV[5] '1' to set expires ARGV[6]; ARGV[7] user mode
 * ('-' keep, 'n' none, 'u' set to ARGV[8]); ARGV[9] token. The deadline may move either way.
 * Answers '1' and the old user and token when the user changed.
 */
export const UPDATE = script(
  'update',
  `
local s, why = writable()
if not s then return { why } end
local before = s.deadline
if now - s.touched >= 1000 then
  redis.call('HSET', M, 'touched', ARGV[1])
  s.touched = now
end
if ARGV[3] == '1' then
  redis.call('HSET', M, 'timeout', ARGV[4])
  s.timeout = tonumber(ARGV[4])
end
if ARGV[5] == '1' then
  redis.call('HSET', M, 'expires', ARGV[6])
  s.expires = tonumber(ARGV[6])
end
local d = deadlineOf(s.touched, s.timeout, s.expires)
local moved = false
if d ~= before then
  moved = fmt(d)
  keepUntil(d)
end
local out = { 'ok', moved, s.tok, s.cls, '0' }
if ARGV[7] ~= '-' then
  local f = redis.call('HMGET', M, 'user', 'ut')
  local user = ARGV[7] == 'u' and ARGV[8] or false
  if f[1] ~= user then
    if user then
      redis.call('HSET', M, 'user', user, 'ut', ARGV[9])
    else
      redis.call('HDEL', M, 'user', 'ut')
    end
    append(out, { f[1], f[2] })
    out[5] = '1'
  end
end
return out
`,
);

/** Records an access now, unthrottled; a no-op on a read-only session. */
export const TOUCH = script(
  'touch',
  `
local s = live()
if not s then return { 'nosession' } end
if s.ro or s.moving then return { 'ok', false, s.tok, s.cls } end
redis.call('HSET', M, 'touched', ARGV[1])
local d = deadlineOf(now, s.timeout, s.expires)
local moved = false
if d ~= s.deadline then
  moved = fmt(d)
  keepUntil(d)
end
return { 'ok', moved, s.tok, s.cls }
`,
);

/** Deletes the stored session, live or not: 'ok' if it was live, 'expired', or 'nosession'. */
export const DESTROY = script(
  'destroy',
  `
local s = read()
if not s then
  redis.call('DEL', V)
  return { 'nosession' }
end
local old = remains()
redis.call('DEL', M, V)
return append({ s.live and 'ok' or 'expired', false, s.tok, s.cls }, old)
`,
);

/** ARGV[3] lease ms. Answers 'ok' key until, 'held' until, or 'nosession'. */
export const LOCK = script(
  'lock',
  `
local s = live()
if not s then return { 'nosession' } end
local f = redis.call('HMGET', M, 'fence', 'lu')
if tonumber(f[2] or '0') > now then return { 'held', false, s.tok, s.cls, f[2] } end
-- Keys only grow, even across unlocks: a holder whose lease ran out can never release the next.
local key = tonumber(f[1] or '0') + 1
local untilMs = now + tonumber(ARGV[3])
redis.call('HSET', M, 'fence', fmt(key), 'lk', fmt(key), 'lu', fmt(untilMs))
return { 'ok', false, s.tok, s.cls, fmt(key), fmt(untilMs) }
`,
);

/** ARGV[3] the key. 'ok' if released. */
export const UNLOCK = script(
  'unlock',
  `
local s = live()
-- A frozen session's lock is being moved to the new id: releasing the old copy would not free it.
if not s or s.moving then return { 'no' } end
local f = redis.call('HMGET', M, 'lk', 'lu')
if f[1] ~= ARGV[3] or not f[2] or tonumber(f[2]) <= now then return { 'no' } end
redis.call('HDEL', M, 'lk', 'lu')
return { 'ok' }
`,
);

/**
 * Regenerate, step 1, on the old id: freezes it (read-only to everyone) with a move marker
 * ARGV[3] = the new id, and answers a snapshot: data, user, created, timeout, expires, fence,
 * lock key, lock until, then variable pairs.
 */
export const FREEZE = script(
  'freeze',
  `
local s, why = writable()
if not s then return { why } end
local d = touchIfDue(s)
redis.call('HSET', M, 'mv', ARGV[3], 'mvat', ARGV[1])
local f = redis.call('HMGET', M, 'data', 'user', 'created', 'timeout', 'expires', 'fence', 'lk', 'lu')
local out = { 'ok', d, s.tok, s.cls }
append(out, { f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8] })
return append(out, redis.call('HGETALL', V))
`,
);

/**
 * Regenerate, step 3, on the old id: if it still carries the marker of new id ARGV[3], turns it
 * into a read-only grace copy for ARGV[4] ms (unlocked), or deletes it. 'lost' when the marker is
 * gone but the session is not (a writer took a stale freeze back), 'gone' when it was removed.
 */
export const FINISH = script(
  'finish',
  `
local s = read()
if not s then return { 'gone' } end
if s.mv ~= ARGV[3] then return { 'lost' } end
local grace = tonumber(ARGV[4])
if grace > 0 then
  local expires = s.expires
  if expires == 0 or expires > now + grace then expires = now + grace end
  redis.call('HDEL', M, 'mv', 'mvat', 'lk', 'lu')
  redis.call('HSET', M, 'ro', '1', 'expires', fmt(expires))
  local d = deadlineOf(s.touched, s.timeout, expires)
  keepUntil(d)
  return { 'grace', fmt(d), s.tok, s.cls }
end
local old = remains()
redis.call('DEL', M, V)
return append({ 'deleted', false, s.tok, s.cls }, old)
`,
);

/** Undoes FREEZE (the new id was taken): clears the marker if it still names new id ARGV[3]. */
export const UNFREEZE = script(
  'unfreeze',
  `
if redis.call('HGET', M, 'mv') == ARGV[3] then redis.call('HDEL', M, 'mv', 'mvat') end
return { 'ok' }
`,
);

/** Undoes the placing of a regenerated copy: deletes it if it is still the one with token ARGV[3]. */
export const UNPLACE = script(
  'unplace',
  `
if redis.call('HGET', M, 'tok') == ARGV[3] then redis.call('DEL', M, V) end
return { 'ok' }
`,
);

/**
 * The sweep of one deadline entry with token ARGV[3]: deletes the session only if it is that
 * incarnation and its deadline has passed, so concurrent sweepers report each expiry once.
 * Answers 'expired' (with remains), 'live' with the real deadline, or 'gone'.
 */
export const SWEEP_ONE = script(
  'sweep',
  `
local s = read()
if not s or s.tok ~= ARGV[3] then return { 'gone' } end
if s.live then return { 'live', fmt(s.deadline), s.tok, s.cls } end
local old = remains()
redis.call('DEL', M, V)
return append({ 'expired', false, s.tok, s.cls }, old)
`,
);

/** The value of variable ARGV[3] of a live session, nil otherwise; changes nothing. */
export const PEEK_VAR = script(
  'peekvar',
  `
local s = live()
if not s then return false end
return redis.call('HGET', V, ARGV[3])
`,
);

/**
 * One deadline entry in both sets of a shard (KEYS[1] all, KEYS[2] the class; one slot).
 * ARGV: mode, score, member. 'add' inserts; 'raise' only raises an entry still there (a touch
 * arriving after a destroy must not bring the entry back); 'set' moves an entry still there;
 * 'rem' removes.
 */
export const INDEX_DEADLINE = script(
  'index',
  `
local mode, score, member = ARGV[1], ARGV[2], ARGV[3]
for i = 1, 2 do
  if mode == 'rem' then
    redis.call('ZREM', KEYS[i], member)
  elseif mode == 'add' then
    redis.call('ZADD', KEYS[i], score, member)
  elseif mode == 'raise' then
    redis.call('ZADD', KEYS[i], 'XX', 'GT', score, member)
  else
    redis.call('ZADD', KEYS[i], 'XX', score, member)
  end
end
return 1
`,
  '',
);

/** Every script, for loading. */
export const ALL_SCRIPTS: readonly Script[] = [
  CREATE,
  SET_DATA,
  GET,
  GET_VAR,
  SET_VARS,
  UNSET_VARS,
  INC_VAR,
  UPDATE,
  TOUCH,
  DESTROY,
  LOCK,
  UNLOCK,
  FREEZE,
  FINISH,
  UNFREEZE,
  UNPLACE,
  SWEEP_ONE,
  PEEK_VAR,
  INDEX_DEADLINE,
];
