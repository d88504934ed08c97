/**
 * The Redis store: sessions shared by several sessiond servers through one standalone Redis or
 * one Redis Cluster (DESIGN.md, "Where users outgrow one machine").
 *
 * The session is the source of truth. Each session is two hashes in one slot (`{s:<id>}`), and
 * every operation on a session is one Lua script over them: atomic on a standalone Redis and on a
 * cluster alike. Time is the caller's `now`, never Redis's clock.
 *
 * The indexes (deadline sets for COUNT and the sweep, user sets, variable indexes) live on other
 * slots, so they cannot change in the same step. They are kept a superset and cleaned lazily:
 * - an entry is written after the session write that calls for it, and carries the token of
 *   that write (`<id> <tok>`); the session records the token of its current entry;
 * - readers (FIND, LISTVAR, USERSESSIONS) check each entry against its session and drop those
 *   whose token is no longer current or whose session is gone. A token is never reused, so an
 *   entry once dead stays dead and dropping it cannot race with a writer; entries of sessions that
 *   merely expired are skipped, not dropped, and go with the sweep;
 * - deadline entries hold exact deadlines, so COUNT is a ZCOUNT of (now, +inf]. A touch only
 *   raises an entry that is still there (ZADD XX GT), so it cannot revive one a destroy removed;
 *   the sweep re-checks every due entry against its session and corrects or removes it.
 *
 * What the split costs: if a server dies between a session write and its index write, or its
 * index write fails, FIND/USERSESSIONS miss that session until the variable or user is written
 * again, and COUNT is off for it until the sweep passes its old deadline. Two servers changing the
 * same session's deadline in opposite directions at the same instant can leave its deadline entry
 * late by the difference (COUNT includes it until the sweep corrects it).
 */
import { randomBytes } from 'node:crypto';
import { SessiondError } from '../../errors.ts';
import {
  NO_SESSION,
  isLive,
  type ExpiredSession,
  type GetOptions,
  type ListOptions,
  type ListPage,
  type LockAttempt,
  type NoSession,
  type SessionInit,
  type SessionPatch,
  type SessionRecord,
  type Store,
  type StoreLimits,
  type WriteFailure,
} from '../types.ts';
import {
  INDEX_SHARDS,
  KeySpace,
  bytes,
  deadlineMember,
  member,
  parseMember,
  shardOf,
  text,
} from './keys.ts';
import { openLink, type Link, type Master, type Reply } from './link.ts';
import { RedisEvents } from './redis-events.ts';
import {
  CREATE,
  DESTROY,
  FINISH,
  FREEZE,
  GET,
  GET_VAR,
  INC_VAR,
  INDEX_DEADLINE,
  LOCK,
  PEEK_VAR,
  SET_DATA,
  SET_VARS,
  SWEEP_ONE,
  TOUCH,
  UNFREEZE,
  UNLOCK,
  UNPLACE,
  UNSET_VARS,
  UPDATE,
  type Script,
} from './scripts.ts';

/** Options of {@link RedisStore.open}. */
export interface RedisStoreOptions {
  /** A standalone Redis; default `redis://127.0.0.1:6379`. Ignored when `cluster` is given. */
  url?: string;
  /** A Redis Cluster: URLs (or host:port) of some of its masters; credentials from the first. */
  cluster?: { rootNodes: readonly string[] };
  /**
   * Leads every key, so several stores can share one Redis; no braces. Default `sessiond:`.
   * Every server sharing sessions must use the same prefix and the same `indexedVars`.
   */
  prefix?: string;
  /**
   * Variable names FIND and LISTVAR answer from an index; others are found by scanning every
   * session. Names set before they were listed here are not in the index.
   */
  indexedVars?: readonly string[];
  /**
   * Session keys get a Redis expiry this long after their deadline, a safety net for memory if
   * no sweep runs; the sweep (which reports each expiry) normally removes them first. Default one
   * hour; it must exceed the clock skew between servers and the longest sweep outage.
   */
  safetyMarginMs?: number;
  /** Told of connection trouble and failed index writes; default console.error. */
  onError?: (error: Error) => void;
}

type IndexMode = 'add' | 'raise' | 'set' | 'rem';

/** A session's fields as the insert layout of the scripts takes them. */
interface InsertFields {
  cls: string;
  data: string;
  user: string | null;
  timeout: number;
  expires: number;
  created?: string | null;
  fence?: string | null;
  lockKey?: string | null;
  lockUntil?: string | null;
  vars: Iterable<readonly [string, string]>;
}

const DEFAULT_PREFIX = 'sessiond:';
const DEFAULT_MARGIN_MS = 3_600_000;
const DEFAULT_PAGE = 100;
/** A LIST page stops after examining this many keys per requested id, live or not. */
const LIST_SCAN_FACTOR = 10;
/** Keys asked of SCAN per call when listing everything. */
const SCAN_BATCH = 1000;
/** `r<master>.<redis cursor>[.<last id, base64url>]`; never "0", which ends a listing. */
const CURSOR = /^r(\d{1,4})\.(\d{1,20})(?:\.([A-Za-z0-9_-]+))?$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** A reply item as a byte string; null for a nil. */
function str(reply: Reply | undefined): string | null {
  if (reply === null || reply === undefined) return null;
  if (Buffer.isBuffer(reply)) return text(reply);
  if (typeof reply === 'number') return String(reply);
  throw new SessiondError('ERR', 'redis store: unexpected reply shape');
}

type Strings<N extends number, T extends Array<string | null> = []> = T['length'] extends N
  ? T
  : Strings<N, [...T, string | null]>;

/** `n` reply items from `from` on, as byte strings (null for nil or missing). */
function strs<N extends number>(reply: Reply[], from: number, n: N): Strings<N> {
  return Array.from({ length: n }, (_, i) => str(reply[from + i])) as Strings<N>;
}

function arr(reply: Reply): Reply[] {
  if (!Array.isArray(reply)) throw new SessiondError('ERR', 'redis store: unexpected reply shape');
  return reply;
}

/** name, value, name, value, ... from `from` on, as pairs. */
function pairs(reply: Reply[], from: number): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = from; i + 1 < reply.length; i += 2) out.push([str(reply[i])!, str(reply[i + 1])!]);
  return out;
}

function closedError(): SessiondError {
  return new SessiondError('ERR', 'the redis store is closed');
}

/**
 * A cursor is taken at its word only as a place to resume: a forged one can skip or repeat ids
 * of a listing the caller may read anyway, and reaches Redis only as SCAN's numeric cursor.
 */
function decodeCursor(cursor: string | undefined) {
  if (cursor === undefined || cursor === '0') return { node: 0, cursor: '0', after: null };
  const m = CURSOR.exec(cursor);
  if (!m || BigInt(m[2]!) > UINT64_MAX) throw new SessiondError('ERR', 'invalid cursor');
  const after = m[3] === undefined ? null : Buffer.from(m[3], 'base64url').toString('latin1');
  return { node: Number(m[1]), cursor: m[2]!, after };
}

function encodeCursor(node: number, cursor: string, after: string | null): string {
  const tail = after === null ? '' : `.${Buffer.from(after, 'latin1').toString('base64url')}`;
  return `r${node}.${cursor}${tail}`;
}

/**
 * A {@link Store} in Redis, standalone or Cluster, shared by any number of sessiond servers.
 * See the module comment for the layout of keys and how indexes are kept.
 *
 * Every method rejects with ERR once closed, and with node-redis's error when Redis cannot be
 * reached (commands are not queued while disconnected).
 *
 * @example
 * const store = await RedisStore.open({ url: 'redis://sessions.internal:6379', indexedVars: ['user'] });
 * const engine = new Engine({ store });
 */
export class RedisStore implements Store {
  readonly kind = 'redis';
  /** Events between the servers that share this Redis (pub/sub on `<prefix>events`). */
  readonly events: RedisEvents;
  readonly #link: Link;
  readonly #keys: KeySpace;
  readonly #indexed: ReadonlySet<string>;
  readonly #margin: string;
  readonly #onError: (error: Error) => void;
  /** Tokens are this process's random base plus a counter: unique across servers, never reused. */
  readonly #tokenBase = randomBytes(9).toString('base64url');
  #tokenSeq = 0;
  #sweepShard = 0;
  #closed = false;

  private constructor(
    link: Link,
    events: RedisEvents,
    keys: KeySpace,
    options: RedisStoreOptions,
    margin: number,
  ) {
    this.#link = link;
    this.events = events;
    this.#keys = keys;
    this.#indexed = new Set(options.indexedVars ?? []);
    this.#margin = String(margin);
    this.#onError = options.onError ?? ((error) => console.error('sessiond: redis store:', error));
  }

  /**
   * Connects to a standalone Redis (`url`) or a Redis Cluster (`cluster.rootNodes`).
   * Needs Redis 6.2 or later (ZADD GT).
   * @throws RangeError for a bad prefix or margin; node-redis's error when Redis cannot be reached
   * @example
   * const store = await RedisStore.open({ cluster: { rootNodes: ['redis://10.0.0.1:7000'] } });
   */
  static async open(options: RedisStoreOptions = {}): Promise<RedisStore> {
    const keys = new KeySpace(options.prefix ?? DEFAULT_PREFIX);
    const margin = options.safetyMarginMs ?? DEFAULT_MARGIN_MS;
    if (!Number.isSafeInteger(margin) || margin <= 0) {
      throw new RangeError('redis store: safetyMarginMs must be a positive integer');
    }
    let report: (error: Error) => void = () => {};
    const link = await openLink({
      ...(options.url !== undefined && { url: options.url }),
      ...(options.cluster !== undefined && { cluster: options.cluster }),
      onError: (error) => report(error),
    });
    const events = await RedisEvents.open({
      ...(options.url !== undefined && { url: options.url }),
      ...(options.cluster !== undefined && { cluster: options.cluster }),
      prefix: options.prefix ?? DEFAULT_PREFIX,
      onError: (error) => report(error),
    }).catch(async (error: unknown) => {
      await link.close();
      throw error;
    });
    const store = new RedisStore(link, events, keys, options, margin);
    report = store.#onError;
    return store;
  }

  async create(init: SessionInit, now: number): Promise<boolean> {
    const tok = this.#token();
    const reply = await this.#session(CREATE, init.id, now, this.#insertArgs(init, tok));
    if (str(reply[0]) === 'exists') return false;
    await this.#settle(this.#indexInsert(init.id, reply, tok, init));
    return true;
  }

  async get(id: string, now: number, options: GetOptions): Promise<SessionRecord | null> {
    const r = await this.#session(GET, id, now, [
      options.touch ? '1' : '0',
      options.vars ? '1' : '0',
    ]);
    if (str(r[0]) !== 'ok') return null;
    await this.#settle(this.#indexMoved(id, r, 'raise'));
    const [data, user, created, timeout, expires, touched, ro, lockKey, lockUntil] = strs(r, 4, 9);
    const until = Number(lockUntil);
    return {
      id,
      cls: str(r[3])!,
      data: data ?? '',
      user,
      timeout: Number(timeout),
      expires: Number(expires),
      created: Number(created),
      touched: Number(touched),
      readonly: ro === '1',
      vars: new Map(pairs(r, 13)),
      lock: lockKey !== null && until > now ? { key: Number(lockKey), until } : null,
    };
  }

  async getVar(id: string, name: string, now: number): Promise<string | undefined | NoSession> {
    const r = await this.#session(GET_VAR, id, now, [bytes(name)]);
    if (str(r[0]) !== 'ok') return NO_SESSION;
    await this.#settle(this.#indexMoved(id, r, 'raise'));
    return str(r[4]) ?? undefined;
  }

  async setVars(
    id: string,
    vars: ReadonlyArray<readonly [string, string]>,
    now: number,
    limits: StoreLimits,
  ): Promise<'ok' | 'limit' | WriteFailure> {
    // The last value of a repeated name wins, and a repeated name counts once.
    const latest = new Map(vars);
    const tok = this.#token();
    const args: Array<string | Buffer> = [String(limits.maxVars), tok, String(latest.size)];
    for (const [name, value] of latest) {
      args.push(this.#indexed.has(name) ? '1' : '0', bytes(name), bytes(value));
    }
    const r = await this.#session(SET_VARS, id, now, args);
    const status = str(r[0]) as 'ok' | 'limit' | WriteFailure;
    await this.#settle([
      ...this.#indexMoved(id, r, 'raise'),
      ...(status === 'ok' ? this.#indexVars(id, r.slice(4), tok, latest) : []),
    ]);
    return status;
  }

  async unsetVars(
    id: string,
    names: readonly string[],
    now: number,
  ): Promise<number | WriteFailure> {
    const unique = [...new Set(names)];
    const args: Array<string | Buffer> = [String(unique.length)];
    for (const name of unique) args.push(this.#indexed.has(name) ? '1' : '0', bytes(name));
    const r = await this.#session(UNSET_VARS, id, now, args);
    const status = str(r[0]);
    if (status !== 'ok') return status as WriteFailure;
    await this.#settle([
      ...this.#indexMoved(id, r, 'raise'),
      ...this.#indexVars(id, r.slice(5), '', new Map()),
    ]);
    return Number(r[4]);
  }

  async incVar(
    id: string,
    name: string,
    by: bigint,
    now: number,
    limits: StoreLimits,
  ): Promise<bigint | 'notint' | 'limit' | WriteFailure> {
    const tok = this.#token();
    const inRange = by >= INT64_MIN && by <= INT64_MAX;
    const r = await this.#session(INC_VAR, id, now, [
      String(limits.maxVars),
      bytes(name),
      inRange ? by.toString() : '0',
      inRange ? '1' : '0',
      this.#indexed.has(name) ? '1' : '0',
      tok,
    ]);
    const status = str(r[0]);
    const after = status === 'ok' ? str(r[4])! : undefined;
    await this.#settle([
      ...this.#indexMoved(id, r, 'raise'),
      ...(after === undefined
        ? []
        : this.#indexVars(id, r.slice(5), tok, new Map([[name, after]]))),
    ]);
    if (after === undefined) return status as 'notint' | 'limit' | WriteFailure;
    return BigInt(after);
  }

  async setData(
    id: string,
    data: string,
    now: number,
    init: SessionInit,
  ): Promise<'updated' | 'created' | 'readonly'> {
    const tok = this.#token();
    const fields = { ...init, data };
    const r = await this.#session(SET_DATA, id, now, this.#insertArgs(fields, tok));
    const status = str(r[0]) as 'updated' | 'created' | 'readonly';
    if (status === 'created') await this.#settle(this.#indexInsert(id, r, tok, fields));
    else await this.#settle(this.#indexMoved(id, r, 'raise'));
    return status;
  }

  async update(id: string, patch: SessionPatch, now: number): Promise<'ok' | WriteFailure> {
    const tok = this.#token();
    const userMode = patch.user === undefined ? '-' : patch.user === null ? 'n' : 'u';
    const r = await this.#session(UPDATE, id, now, [
      patch.timeout === undefined ? '0' : '1',
      String(patch.timeout ?? 0),
      patch.expires === undefined ? '0' : '1',
      String(patch.expires ?? 0),
      userMode,
      bytes(patch.user ?? ''),
      tok,
    ]);
    const status = str(r[0]);
    if (status !== 'ok') return status as WriteFailure;
    const ops = this.#indexMoved(id, r, 'set');
    if (str(r[4]) === '1') {
      const [before, beforeTok] = [str(r[5]), str(r[6])];
      if (before !== null && beforeTok !== null)
        ops.push(this.#srem(this.#keys.user(before), id, beforeTok));
      if (patch.user) ops.push(this.#sadd(this.#keys.user(patch.user), id, tok));
    }
    await this.#settle(ops);
    return 'ok';
  }

  async touch(id: string, now: number): Promise<boolean> {
    const r = await this.#session(TOUCH, id, now, []);
    if (str(r[0]) !== 'ok') return false;
    await this.#settle(this.#indexMoved(id, r, 'raise'));
    return true;
  }

  async destroy(id: string, now: number): Promise<boolean> {
    const r = await this.#session(DESTROY, id, now, []);
    const status = str(r[0]);
    if (status === 'nosession') return false;
    await this.#settle(this.#unindex(id, r.slice(4)));
    return status === 'ok';
  }

  /**
   * Old and new id live on different slots, so this takes three scripts: FREEZE the old session
   * (read-only to everyone, marked with the new id) and copy it out; CREATE the copy under the
   * new id (refused if a live session has it); FINISH the old one (grace copy, or delete) only
   * if it still carries the marker. While frozen, writes to the old id answer 'readonly', so no
   * write can land there and miss the copy. A marker older than MOVE_TIMEOUT_MS (10 s) is void:
   * the next write clears it, FINISH then finds it gone and this call undoes the copy and
   * rejects with ERR. If this server dies mid-way, the old session is read-only for at most that
   * long and an unused copy under the new id expires on its own.
   */
  async regenerate(
    oldId: string,
    newId: string,
    graceMs: number,
    now: number,
  ): Promise<'ok' | 'exists' | WriteFailure> {
    const frozen = await this.#session(FREEZE, oldId, now, [bytes(newId)]);
    const status = str(frozen[0]);
    if (status !== 'ok') return status as WriteFailure;
    const ops = this.#indexMoved(oldId, frozen, 'raise');
    const [data, user, created, timeout, expires, fence, lockKey, lockUntil] = strs(frozen, 4, 8);
    const fields: InsertFields = {
      cls: str(frozen[3])!,
      data: data ?? '',
      user,
      timeout: Number(timeout),
      expires: Number(expires),
      created,
      fence,
      lockKey,
      lockUntil,
      vars: pairs(frozen, 12),
    };
    const tok = this.#token();
    const placed = await this.#session(CREATE, newId, now, this.#insertArgs(fields, tok));
    if (str(placed[0]) === 'exists') {
      await this.#session(UNFREEZE, oldId, now, [bytes(newId)]);
      await this.#settle(ops);
      return 'exists';
    }
    const finished = await this.#session(FINISH, oldId, now, [bytes(newId), String(graceMs)]);
    const outcome = str(finished[0]);
    if (outcome === 'lost') {
      await this.#session(UNPLACE, newId, now, [tok]);
      await this.#settle([...ops, ...this.#unindex(newId, placed.slice(4))]);
      throw new SessiondError('ERR', 'regenerate took too long and was undone; try again');
    }
    ops.push(...this.#indexInsert(newId, placed, tok, fields));
    if (outcome === 'grace') ops.push(...this.#indexMoved(oldId, finished, 'set'));
    if (outcome === 'deleted') ops.push(...this.#unindex(oldId, finished.slice(4)));
    await this.#settle(ops);
    return 'ok';
  }

  async find(name: string, value: string, now: number, limit = Infinity): Promise<string[]> {
    this.#open();
    if (!this.#indexed.has(name)) {
      return (await this.#scanVar(name, now, limit, value)).map(([id]) => id);
    }
    const key = this.#keys.varValue(name, value);
    const live = await this.#readIndex(key, 'set', `x:${name}`, now, limit);
    return live.map((entry) => entry.id);
  }

  async listVar(name: string, now: number, limit = Infinity): Promise<Array<[string, string]>> {
    this.#open();
    if (!this.#indexed.has(name)) return this.#scanVar(name, now, limit);
    const key = this.#keys.varName(name);
    const live = await this.#readIndex(key, 'hash', `x:${name}`, now, limit);
    return live.map((entry) => [entry.id, entry.value!]);
  }

  async list(now: number, options: ListOptions): Promise<ListPage> {
    this.#open();
    const start = decodeCursor(options.cursor);
    const masters = await this.#link.masters();
    const cls = options.cls;
    if (options.cursor === undefined && options.count === undefined) {
      const limit = options.limit ?? Infinity;
      const ids = new Set<string>();
      await this.#eachSessionKey(masters, async (keys) => {
        for (const id of await this.#liveIds(keys, now, cls)) {
          if (ids.size >= limit) break;
          ids.add(id);
        }
        return ids.size >= limit;
      });
      return { cursor: '0', ids: [...ids] };
    }
    const wanted = options.count ?? DEFAULT_PAGE;
    const count = Number.isSafeInteger(wanted) && wanted > 0 ? wanted : DEFAULT_PAGE;
    let { node, cursor, after } = start;
    const ids: string[] = [];
    let examined = 0;
    while (node < masters.length && ids.length < count && examined < count * LIST_SCAN_FACTOR) {
      const room = count - ids.length;
      const reply = arr(
        await masters[node]!.send([
          'SCAN',
          cursor,
          'MATCH',
          this.#keys.sessionPattern,
          'COUNT',
          String(Math.min(Math.max(room, 10), SCAN_BATCH)),
        ]),
      );
      const keys = arr(reply[1]!) as Buffer[];
      examined += keys.length;
      let batch = (await this.#liveIds(keys, now, cls)).sort();
      // Resuming inside a SCAN batch: the ids up to the last one returned were given already.
      if (after !== null) batch = batch.filter((id) => id > after!);
      after = null;
      if (batch.length > room) {
        // SCAN gave more than fits: stay on this SCAN cursor and remember where the page ended.
        ids.push(...batch.slice(0, room));
        return { cursor: encodeCursor(node, cursor, ids.at(-1)!), ids };
      }
      ids.push(...batch);
      const next = str(reply[0])!;
      if (next === '0') {
        node++;
        cursor = '0';
      } else {
        cursor = next;
      }
    }
    return { cursor: node >= masters.length ? '0' : encodeCursor(node, cursor, null), ids };
  }

  async count(now: number, cls?: string): Promise<number> {
    this.#open();
    const counts = await Promise.all(
      Array.from({ length: INDEX_SHARDS }, (_, shard) => {
        const key = cls === undefined ? this.#keys.all(shard) : this.#keys.cls(shard, cls);
        // Live strictly before the deadline: exclusive lower bound; never-expiring ones are +inf.
        return this.#link.send(key, ['ZCOUNT', key, `(${now}`, '+inf'], true);
      }),
    );
    return counts.reduce<number>((sum, n) => sum + Number(n), 0);
  }

  async lock(id: string, leaseMs: number, now: number): Promise<LockAttempt> {
    const r = await this.#session(LOCK, id, now, [String(leaseMs)]);
    const status = str(r[0]);
    if (status === 'nosession') return 'nosession';
    if (status === 'held') return { acquired: false, heldUntil: Number(str(r[4])) };
    return { acquired: true, key: Number(str(r[4])), until: Number(str(r[5])) };
  }

  async unlock(id: string, key: number, now: number): Promise<boolean> {
    const r = await this.#session(UNLOCK, id, now, [String(key)]);
    return str(r[0]) === 'ok';
  }

  async userSessions(user: string, now: number, limit = Infinity): Promise<string[]> {
    this.#open();
    const live = await this.#readIndex(this.#keys.user(user), 'set', 'ut', now, limit);
    return live.map((entry) => entry.id);
  }

  async destroyUser(user: string, except: string | null, now: number): Promise<string[]> {
    const ids = (await this.userSessions(user, now)).filter((id) => id !== except);
    const destroyed = await Promise.all(ids.map((id) => this.destroy(id, now)));
    return ids.filter((_, i) => destroyed[i]);
  }

  /**
   * Takes due entries (ZRANGEBYSCORE up to `limit`) from the deadline sets, shard by shard, and
   * runs SWEEP_ONE on each: it deletes the session only if its deadline really passed, so of two
   * servers sweeping at once exactly one reports each expiry. Entries of live sessions (touched
   * since) move to their real deadline; entries of sessions gone are dropped.
   */
  async sweep(now: number, limit: number): Promise<ExpiredSession[]> {
    this.#open();
    const want = Math.max(0, Math.floor(limit));
    const expired: ExpiredSession[] = [];
    // Bounds one call's work however many stale entries lie ahead of the expired ones.
    let budget = want * 4 + INDEX_SHARDS;
    const first = this.#sweepShard;
    this.#sweepShard = (first + 1) % INDEX_SHARDS;
    for (let i = 0; i < INDEX_SHARDS && expired.length < want && budget > 0; i++) {
      const key = this.#keys.all((first + i) % INDEX_SHARDS);
      for (;;) {
        const take = Math.min(want - expired.length, budget);
        if (take <= 0) break;
        const due = arr(
          await this.#link.send(
            key,
            ['ZRANGEBYSCORE', key, '-inf', String(now), 'LIMIT', '0', String(take)],
            true,
          ),
        ).map(str);
        budget -= due.length;
        for (const gone of await Promise.all(due.map((m) => this.#sweepOne(key, m, now)))) {
          if (gone) expired.push(gone);
        }
        if (due.length < take) break;
      }
    }
    return expired;
  }

  async empty(now: number): Promise<number> {
    const live = await this.count(now);
    const masters = await this.#link.masters();
    for (const master of masters) {
      let cursor = '0';
      do {
        const reply = arr(
          await master.send([
            'SCAN',
            cursor,
            'MATCH',
            this.#keys.everything,
            'COUNT',
            String(SCAN_BATCH),
          ]),
        );
        cursor = str(reply[0])!;
        // One key per UNLINK: keys of one SCAN batch may sit on different slots of a cluster.
        await Promise.all(
          (arr(reply[1]!) as Buffer[]).map((key) => this.#link.send(key, ['UNLINK', key])),
        );
      } while (cursor !== '0');
    }
    return live;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#link.close(), this.events.close()]);
  }

  // ---- the wire ----

  #open(): void {
    if (this.#closed) throw closedError();
  }

  #token(): string {
    return `${this.#tokenBase}${(this.#tokenSeq++).toString(36)}`;
  }

  /** Runs a session script: KEYS = the session's two keys, ARGV = now, margin, ...args. */
  async #session(script: Script, id: string, now: number, args: Array<string | Buffer>) {
    this.#open();
    const keys = [this.#keys.meta(id), this.#keys.vars(id)];
    return arr(await this.#link.run(script, keys, [String(now), this.#margin, ...args]));
  }

  /** The insert layout of the scripts (see `insert` in scripts.ts). */
  #insertArgs(fields: InsertFields, tok: string): Array<string | Buffer> {
    const vars = [...fields.vars];
    const indexed = vars.filter(([name]) => this.#indexed.has(name)).map(([name]) => bytes(name));
    return [
      tok,
      bytes(fields.cls),
      bytes(fields.data),
      fields.user === null ? '0' : '1',
      bytes(fields.user ?? ''),
      String(fields.timeout),
      String(fields.expires),
      fields.created ?? '',
      fields.fence ?? '0',
      fields.lockKey ?? '',
      fields.lockUntil ?? '',
      String(indexed.length),
      ...indexed,
      ...vars.flatMap(([name, value]) => [bytes(name), bytes(value)]),
    ];
  }

  // ---- indexes ----

  /** Waits for index writes; a failure is reported, not thrown: the session write stands. */
  async #settle(ops: ReadonlyArray<Promise<unknown>>): Promise<void> {
    for (const result of await Promise.allSettled(ops)) {
      if (result.status === 'rejected') {
        const cause: unknown = result.reason;
        this.#onError(
          new Error('an index write failed; the index will be corrected lazily', { cause }),
        );
      }
    }
  }

  #indexDeadline(id: string, tok: string, cls: string, mode: IndexMode, score = '0') {
    const shard = shardOf(id);
    return this.#link.run(
      INDEX_DEADLINE,
      [this.#keys.all(shard), this.#keys.cls(shard, cls)],
      [mode, score, bytes(deadlineMember(id, tok, cls))],
    );
  }

  /** The deadline entry's update when a script moved the deadline (reply header: status, dl, tok, cls). */
  #indexMoved(id: string, reply: Reply[], mode: IndexMode): Array<Promise<unknown>> {
    const deadline = str(reply[1]);
    if (deadline === null) return [];
    return [this.#indexDeadline(id, str(reply[2])!, str(reply[3])!, mode, deadline)];
  }

  /** Entries of a session just written whole by CREATE or SET_DATA; and removal of what it replaced. */
  #indexInsert(id: string, reply: Reply[], tok: string, fields: InsertFields) {
    const ops: Array<Promise<unknown>> = [
      this.#indexDeadline(id, tok, fields.cls, 'add', str(reply[1])!),
    ];
    if (fields.user !== null) ops.push(this.#sadd(this.#keys.user(fields.user), id, tok));
    for (const [name, value] of fields.vars) {
      if (this.#indexed.has(name)) ops.push(...this.#addVar(id, tok, name, value));
    }
    ops.push(...this.#unindex(id, reply.slice(4)));
    return ops;
  }

  /** Removes the entries of a deleted session: tok, cls, user, ut, then (name, tok, value)*. */
  #unindex(id: string, remains: Reply[]): Array<Promise<unknown>> {
    if (remains.length < 4) return [];
    const [tok, cls, user, ut] = strs(remains, 0, 4);
    const ops: Array<Promise<unknown>> = [];
    if (tok !== null && cls !== null) ops.push(this.#indexDeadline(id, tok, cls, 'rem'));
    if (user !== null && ut !== null) ops.push(this.#srem(this.#keys.user(user), id, ut));
    for (let i = 4; i + 3 <= remains.length; i += 3) {
      const [name, varTok, value] = strs(remains, i, 3);
      if (name !== null && varTok !== null) ops.push(...this.#removeVar(id, varTok, name, value));
    }
    return ops;
  }

  /** Index changes of variables: (name, old value, old token)* triples; new values from `after`. */
  #indexVars(
    id: string,
    changes: Reply[],
    tok: string,
    after: ReadonlyMap<string, string>,
  ): Array<Promise<unknown>> {
    const ops: Array<Promise<unknown>> = [];
    for (let i = 0; i + 3 <= changes.length; i += 3) {
      const [name, before, beforeTok] = strs(changes, i, 3);
      if (name === null) continue;
      if (beforeTok !== null) ops.push(...this.#removeVar(id, beforeTok, name, before));
      const value = after.get(name);
      if (value !== undefined) ops.push(...this.#addVar(id, tok, name, value));
    }
    return ops;
  }

  #addVar(id: string, tok: string, name: string, value: string) {
    const byName = this.#keys.varName(name);
    return [
      this.#sadd(this.#keys.varValue(name, value), id, tok),
      this.#link.send(byName, ['HSET', byName, bytes(member(id, tok)), bytes(value)]),
    ];
  }

  #removeVar(id: string, tok: string, name: string, value: string | null) {
    const byName = this.#keys.varName(name);
    const ops = [this.#link.send(byName, ['HDEL', byName, bytes(member(id, tok))])];
    if (value !== null) ops.push(this.#srem(this.#keys.varValue(name, value), id, tok));
    return ops;
  }

  #sadd(key: Buffer, id: string, tok: string) {
    return this.#link.send(key, ['SADD', key, bytes(member(id, tok))]);
  }

  #srem(key: Buffer, id: string, tok: string) {
    return this.#link.send(key, ['SREM', key, bytes(member(id, tok))]);
  }

  /**
   * Checks index members `<id> <tok>` against their sessions: live ones whose current token (in
   * field `field`) is theirs, and dead ones (session gone, token replaced, not ours) as Buffers
   * to remove. Members of sessions that merely expired are in neither: the sweep removes them.
   */
  async #check(
    members: Array<string | null>,
    field: string,
    now: number,
    seen = new Set<string>(),
  ) {
    const live: Array<{ id: string; member: string }> = [];
    const dead: Buffer[] = [];
    const parsed = members.map((m) => ({ m, entry: m === null ? null : parseMember(m) }));
    const rows = await Promise.all(
      parsed.map(({ entry }) => {
        if (entry === null) return Promise.resolve(null);
        const key = this.#keys.meta(entry.id);
        return this.#link.send(
          key,
          ['HMGET', key, 'touched', 'timeout', 'expires', bytes(field)],
          true,
        );
      }),
    );
    parsed.forEach(({ m, entry }, i) => {
      const row = rows[i] === null ? null : strs(arr(rows[i]!), 0, 4);
      if (entry === null || row === null || row[0] === null || row[3] !== entry.tok) {
        if (m !== null) dead.push(bytes(m));
        return;
      }
      if (!isLive(Number(row[0]), Number(row[1]), Number(row[2]), now) || seen.has(entry.id))
        return;
      seen.add(entry.id);
      live.push({ id: entry.id, member: m! });
    });
    return { live, dead };
  }

  /**
   * The live entries of an index set, or of an index hash with each entry's value, read by
   * SSCAN/HSCAN a batch at a time so that the reader stops once it has `limit` of them, however
   * large the index. Dead entries met on the way are removed (see #check).
   */
  async #readIndex(
    key: Buffer,
    type: 'set' | 'hash',
    field: string,
    now: number,
    limit: number,
  ): Promise<Array<{ id: string; value: string | null }>> {
    const found: Array<{ id: string; value: string | null }> = [];
    // A scan may return a member twice: ids already found are skipped, not counted again.
    const seen = new Set<string>();
    let cursor = '0';
    do {
      const command = type === 'set' ? 'SSCAN' : 'HSCAN';
      const reply = arr(
        await this.#link.send(key, [command, key, cursor, 'COUNT', String(SCAN_BATCH)], true),
      );
      cursor = str(reply[0])!;
      const items = arr(reply[1]!);
      const values = type === 'hash' ? new Map(pairs(items, 0)) : null;
      const members = values ? [...values.keys()] : items.map(str);
      const { live, dead } = await this.#check(members, field, now, seen);
      if (dead.length > 0) {
        const remove = type === 'set' ? 'SREM' : 'HDEL';
        await this.#settle([this.#link.send(key, [remove, key, ...dead])]);
      }
      for (const entry of live) {
        if (found.length >= limit) break;
        found.push({ id: entry.id, value: values?.get(entry.member) ?? null });
      }
    } while (cursor !== '0' && found.length < limit);
    return found;
  }

  async #sweepOne(allKey: Buffer, m: string | null, now: number): Promise<ExpiredSession | null> {
    const entry = m === null ? null : parseMember(m);
    if (m === null || entry === null) {
      await this.#settle([this.#link.send(allKey, ['ZREM', allKey, bytes(m ?? '')])]);
      return null;
    }
    const r = await this.#session(SWEEP_ONE, entry.id, now, [entry.tok]);
    const outcome = str(r[0]);
    if (outcome === 'gone') {
      await this.#settle([this.#indexDeadline(entry.id, entry.tok, entry.cls, 'rem')]);
      return null;
    }
    if (outcome === 'live') {
      await this.#settle([
        this.#indexDeadline(entry.id, entry.tok, entry.cls, 'raise', str(r[1])!),
      ]);
      return null;
    }
    await this.#settle(this.#unindex(entry.id, r.slice(4)));
    return { id: entry.id, cls: str(r[3])! };
  }

  // ---- scans ----

  /**
   * Calls `each` with every batch of session metadata keys, master by master, until it
   * resolves true (it has what it wanted).
   */
  async #eachSessionKey(
    masters: Master[],
    each: (keys: Buffer[]) => Promise<boolean | void>,
  ): Promise<void> {
    for (const master of masters) {
      let cursor = '0';
      do {
        const reply = arr(
          await master.send([
            'SCAN',
            cursor,
            'MATCH',
            this.#keys.sessionPattern,
            'COUNT',
            String(SCAN_BATCH),
          ]),
        );
        cursor = str(reply[0])!;
        if (await each(arr(reply[1]!) as Buffer[])) return;
      } while (cursor !== '0');
    }
  }

  /** Ids of the live sessions (of class `cls`, if given) among metadata keys. */
  async #liveIds(keys: Buffer[], now: number, cls: string | undefined): Promise<string[]> {
    const rows = await Promise.all(
      keys.map((key) =>
        this.#link.send(key, ['HMGET', key, 'touched', 'timeout', 'expires', 'cls'], true),
      ),
    );
    const ids: string[] = [];
    rows.forEach((reply, i) => {
      const [touched, timeout, expires, c] = strs(arr(reply), 0, 4);
      if (touched === null || (cls !== undefined && c !== cls)) return;
      if (isLive(Number(touched), Number(timeout), Number(expires), now)) {
        ids.push(this.#keys.idOfMeta(text(keys[i]!)));
      }
    });
    return ids;
  }

  /**
   * [id, value] of the live sessions that have variable `name` (equal to `value`, if given), by
   * scanning them all until `limit` are found.
   */
  async #scanVar(
    name: string,
    now: number,
    limit: number,
    value?: string,
  ): Promise<Array<[string, string]>> {
    const found = new Map<string, string>();
    await this.#eachSessionKey(await this.#link.masters(), async (keys) => {
      const values = await Promise.all(
        keys.map((key) =>
          this.#link.run(
            PEEK_VAR,
            [key, this.#keys.varsOfMeta(key)],
            [String(now), this.#margin, bytes(name)],
          ),
        ),
      );
      values.forEach((reply, i) => {
        const held = str(reply);
        if (held === null || found.size >= limit || (value !== undefined && held !== value)) return;
        found.set(this.#keys.idOfMeta(text(keys[i]!)), held);
      });
      return found.size >= limit;
    });
    return [...found];
  }
}
