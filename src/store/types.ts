/**
 * The store contract: persistence plus the primitives that must be atomic in the backend itself
 * when several sessiond servers share it (create-if-absent, partial writes, increment, leased
 * locks, user index, expiry sweep). Session rules live in the engine; a store only keeps them.
 *
 * Every time argument `now` is milliseconds since the epoch, given by the engine's clock, so
 * stores never read a clock of their own and tests never sleep.
 *
 * Every write and every variable read records an access (throttled by TOUCH_RESOLUTION_MS),
 * even one refused for LIMIT or NOTINT; read-only grace copies are never touched.
 *
 * Strings are "byte strings": each UTF-16 code unit holds one byte (0..255), as RESP delivers
 * them. That keeps values binary-safe and lets `.length` count bytes.
 */

/**
 * What `getVar` answers when no live session has the id. A symbol, because any string could
 * be a variable's value.
 */
/**
 * A value, or a promise of it. The data methods of a {@link Store} return one: a store that keeps
 * sessions in this process (memory) answers at once, so the server's hot path costs no promise
 * and no turn of the microtask queue; a store behind I/O returns a promise. Await it either way.
 */
export type Awaitable<T> = T | Promise<T>;

export const NO_SESSION: unique symbol = Symbol('NO_SESSION');
export type NoSession = typeof NO_SESSION;

/** How often, at most, an access rewrites `touched`: last access is kept to the second. */
export const TOUCH_RESOLUTION_MS = 1000;

/** The fields a new session starts with. */
export interface SessionInit {
  id: string;
  cls: string;
  data: string;
  user: string | null;
  /** Idle timeout in seconds; 0 never idle-expires. */
  timeout: number;
  /** Absolute expiry in ms since the epoch; 0 for none. */
  expires: number;
  vars: ReadonlyMap<string, string>;
}

/** A live session as a store returns it. */
export interface SessionRecord extends Omit<SessionInit, 'vars'> {
  /** A fresh copy: the caller may keep or change it. */
  vars: Map<string, string>;
  created: number;
  touched: number;
  /** A grace copy left by REGENERATE: readable by its id until it expires, never written. */
  readonly: boolean;
  /** The current lock, if held and its lease has not run out. */
  lock: { key: number; until: number } | null;
}

/** What `get` loads: everything, or everything but the variables (cheaper for metadata). */
export interface GetOptions {
  /** Record this access (sliding idle expiry); ignored on read-only sessions. */
  touch: boolean;
  vars: boolean;
}

/** Why a write did not happen. */
export type WriteFailure = 'nosession' | 'readonly';

/** A change to a session's metadata; absent fields are left as they are. */
export interface SessionPatch {
  timeout?: number;
  expires?: number;
  user?: string | null;
}

/** A page of LIST. `cursor` is "0" when the listing is complete. */
export interface ListPage {
  cursor: string;
  ids: string[];
}

export interface ListOptions {
  cursor?: string;
  count?: number;
  cls?: string;
  /** Without a cursor: return at most this many ids (all when absent). Ignored with one. */
  limit?: number;
}

/** The outcome of a lock attempt. */
export type LockAttempt =
  | { acquired: true; key: number; until: number }
  | { acquired: false; heldUntil: number }
  | 'nosession';

/** A session removed by the expiry sweep. */
export interface ExpiredSession {
  id: string;
  cls: string;
}

/**
 * A session event as plain data, as it travels between servers (PROTOCOL.md's `events:*`):
 * for gc and empty a count, for the others a session id.
 */
export type StoreEvent =
  | { type: 'created' | 'updated' | 'destroyed' | 'expired'; id: string }
  | { type: 'regenerated'; id: string; oldId: string }
  | { type: 'gc' | 'empty'; count: number };

/**
 * How a shared store carries events between the servers that share it (Redis pub/sub,
 * PostgreSQL LISTEN/NOTIFY). Each server publishes what it did; every server, itself included,
 * hears each event once. Keyspace notifications are not the source: they are node-local and lossy.
 */
export interface EventTransport {
  /**
   * Sends `event` to every subscribed server. This server's listeners hear it at once, before
   * publish returns (so an operation's event is heard before its reply), and its echo from the
   * backend is dropped.
   */
  publish(event: StoreEvent): Promise<void>;
  /** Calls `listener` for each event any server publishes; resolves once listening. */
  subscribe(listener: (event: StoreEvent) => void): Promise<() => Promise<void>>;
}

/** The limits a store must enforce atomically (the engine checks the rest before calling). */
export interface StoreLimits {
  maxVars: number;
}

/**
 * A session store. Implementations: memory (the reference), sqlite (the embedded default).
 * Every implementation passes `runStoreConformance` in conformance.ts unchanged.
 */
export interface Store {
  /** A short name for INFO and logs: "memory", "sqlite", ... */
  readonly kind: string;

  /** Present on stores that several servers share: the engine's events go through it. */
  readonly events?: EventTransport;

  /** Creates the session unless a live one has that id; an expired one is replaced. */
  create(init: SessionInit, now: number): Awaitable<boolean>;

  /** The live session, or null. */
  get(id: string, now: number, options: GetOptions): Awaitable<SessionRecord | null>;

  /** One variable (undefined when unset) of a live session, touching it; NO_SESSION if none. */
  getVar(id: string, name: string, now: number): Awaitable<string | undefined | NoSession>;

  /** Sets variables; 'limit' when the session would hold more than `limits.maxVars`. */
  setVars(
    id: string,
    vars: ReadonlyArray<readonly [string, string]>,
    now: number,
    limits: StoreLimits,
  ): Awaitable<'ok' | 'limit' | WriteFailure>;

  /** Removes variables; the number that existed. */
  unsetVars(id: string, names: readonly string[], now: number): Awaitable<number | WriteFailure>;

  /**
   * Adds `by` to an integer variable (absent counts as 0) as one atomic step.
   * 'notint' when the value, or the result, is not a signed 64-bit integer (checked before
   * 'limit', which a new variable past `maxVars` gets). The sum may come as a number when it
   * is a safe integer.
   */
  incVar(
    id: string,
    name: string,
    by: bigint,
    now: number,
    limits: StoreLimits,
  ): Awaitable<bigint | number | 'notint' | 'limit' | WriteFailure>;

  /** Sets the data blob, creating the session from `init` when none is live. */
  setData(
    id: string,
    data: string,
    now: number,
    init: SessionInit,
  ): Awaitable<'updated' | 'created' | 'readonly'>;

  /** Changes metadata and records the access. */
  update(id: string, patch: SessionPatch, now: number): Awaitable<'ok' | WriteFailure>;

  /**
   * Records an access now (not throttled). False if no live session has the id; true, and no
   * change, for a read-only grace copy.
   */
  touch(id: string, now: number): Awaitable<boolean>;

  /** Removes the session; true if a live one was removed. */
  destroy(id: string, now: number): Awaitable<boolean>;

  /**
   * Moves the session's variables, data, user, class, timeout, expiry and lock to `newId`,
   * which must be free. `created` is kept, `touched` becomes now, and the lock's fence carries
   * over so keys keep increasing. With `graceMs` > 0 the old id stays as a read-only copy,
   * unlocked, until now + graceMs.
   */
  regenerate(
    oldId: string,
    newId: string,
    graceMs: number,
    now: number,
  ): Promise<'ok' | 'exists' | WriteFailure>;

  /**
   * Ids of live sessions whose variable `name` equals `value`: all of them, or with `limit`,
   * `limit` of them when there are more. A store stops reading once it has `limit`; it never
   * builds the whole list first. The engine asks for one more than it may answer, to tell a
   * complete result from a cut one.
   */
  find(name: string, value: string, now: number, limit?: number): Promise<string[]>;

  /** [id, value] of live sessions that have variable `name`; at most `limit` pairs, as `find`. */
  listVar(name: string, now: number, limit?: number): Promise<Array<[string, string]>>;

  /**
   * Live session ids: when `cursor` is absent, all of them (at most `options.limit`, as `find`),
   * else one page of at most `count` (default 100). A page may come back short, even empty,
   * before the cursor comes back "0".
   */
  list(now: number, options: ListOptions): Promise<ListPage>;

  /** The number of live sessions, of one class if given. */
  count(now: number, cls?: string): Promise<number>;

  /** Takes the session's lock for `leaseMs` if it is free or its lease has run out. */
  lock(id: string, leaseMs: number, now: number): Awaitable<LockAttempt>;

  /** Releases the lock if it is held with `key`; false otherwise. */
  unlock(id: string, key: number, now: number): Awaitable<boolean>;

  /** Ids of the live sessions of a user; at most `limit` of them, as `find`. */
  userSessions(user: string, now: number, limit?: number): Promise<string[]>;

  /** Removes the user's live sessions, but `except`; the ids removed. */
  destroyUser(user: string, except: string | null, now: number): Promise<string[]>;

  /** Removes at most `limit` expired sessions, earliest deadline first; those removed. */
  sweep(now: number, limit: number): Promise<ExpiredSession[]>;

  /**
   * On stores that servers share: whether this server leads the background sweep now. Only
   * the leader sweeps, which saves work; sweep() never reports an expiry twice either way.
   */
  tryLeadSweep?(): Promise<boolean>;

  /** Removes every session; how many were live. */
  empty(now: number): Promise<number>;

  /** Flushes and releases resources. Further calls fail. */
  close(): Promise<void>;
}

/** When the session stops being live: the earlier of idle and absolute expiry (Infinity: never). */
export function deadlineOf(touched: number, timeoutSeconds: number, expires: number): number {
  const idle = timeoutSeconds > 0 ? touched + timeoutSeconds * 1000 : Infinity;
  const absolute = expires > 0 ? expires : Infinity;
  return idle < absolute ? idle : absolute;
}

/** A session is live strictly before its deadline. */
export function isLive(touched: number, timeoutSeconds: number, expires: number, now: number) {
  return now < deadlineOf(touched, timeoutSeconds, expires);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// Canonical decimal only (as Redis's string2ll): no sign "+", no spaces, no leading zeros.
const CANONICAL_INT = /^-?(?:0|[1-9][0-9]{0,18})$/;

/** Parses a canonical signed 64-bit decimal integer; null if it is not one. */
export function parseInt64(text: string): bigint | null {
  // Up to 15 characters the value is exact as a double: INC's counters skip the regex and
  // BigInt's string parser.
  if (text.length <= 15) {
    const small = parseSmallInt(text);
    return small === null ? null : BigInt(small);
  }
  if (!CANONICAL_INT.test(text) || text === '-0') return null;
  const n = BigInt(text);
  return isInt64(n) ? n : null;
}

/** A canonical decimal of at most 15 characters as a number; null if it is not one. */
function parseSmallInt(text: string): number | null {
  return parseSmallIntAt(text, 0, text.length);
}

/**
 * `text[start..end)` as a number when it is a canonical decimal of 1 to 15 characters (exact as
 * a double); null otherwise, longer ones included: the caller falls back to BigInt for those.
 */
export function parseSmallIntAt(text: string, start: number, end: number): number | null {
  if (end - start > 15) return null;
  let i = start;
  const negative = text.charCodeAt(i) === 0x2d;
  if (negative) i++;
  if (i === end) return null;
  // No leading zeros, and no "-0".
  if (text.charCodeAt(i) === 0x30) return end - start === 1 ? 0 : null;
  let n = 0;
  for (; i < end; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return null;
    n = n * 10 + digit;
  }
  return negative ? -n : n;
}

/** Whether `n` fits in a signed 64-bit integer. */
export const isInt64 = (n: bigint): boolean => n >= INT64_MIN && n <= INT64_MAX;

/** `current` (absent counts as 0) plus `by`, or 'notint' when either side or the sum is out of range. */
export function addInt64(current: string | undefined, by: bigint): bigint | 'notint' {
  const base = current === undefined ? 0n : parseInt64(current);
  if (base === null) return 'notint';
  const sum = base + by;
  return isInt64(sum) ? sum : 'notint';
}
