/**
 * The embedded default store: one SQLite file through node:sqlite, in WAL mode, with group
 * commit so that many concurrent writers share each fsync.
 */
import { Buffer } from 'node:buffer';
import { closeSync, constants, openSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { setImmediate as turn } from 'node:timers/promises';
import { SessiondError } from '../../errors.ts';
import {
  NO_SESSION,
  TOUCH_RESOLUTION_MS,
  addInt64,
  deadlineOf,
  type ExpiredSession,
  type GetOptions,
  type ListOptions,
  type ListPage,
  type LockAttempt,
  type SessionInit,
  type SessionPatch,
  type SessionRecord,
  type Store,
  type StoreLimits,
  type WriteFailure,
} from '../types.ts';
import { ALL_ROWS, prepareAll, type Statements } from './queries.ts';
import { migrate } from './schema.ts';

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file; created (mode 0600) when absent. ":memory:" for a private in-memory one. */
  path: string;
  /**
   * 'full' (default): a write is acknowledged once it is on disk (WAL, synchronous=FULL).
   * 'normal': WAL with synchronous=NORMAL; survives a process crash, but the last commits
   * can be lost if the machine loses power.
   */
  durability?: 'normal' | 'full';
  /** How long to wait for another process's write lock on the file; default 5000. */
  busyTimeoutMs?: number;
  /**
   * The variable names FIND and LISTVAR answer through an index, or 'all'; default none, as in
   * the memory store. Other names still work, by scanning the live sessions. Each indexed name
   * costs every write of it an index update (measured: 'all' cuts write throughput by 25-35%).
   */
  indexedVars?: readonly string[] | 'all';
}

/** Counters of the group commit, for INFO and tests. */
export interface SqliteStoreStats {
  /** Transactions committed. */
  commits: number;
  /** Operations that wrote (each belongs to exactly one transaction). */
  writes: number;
  /** Transactions rolled back because a statement or the COMMIT failed. */
  rollbacks: number;
}

/** What {@link SqliteStore.settings} reports. */
export interface SqliteStoreSettings {
  /** "wal" for a file; "memory" for ":memory:". */
  journalMode: string;
  synchronous: string;
  busyTimeoutMs: number;
}

/** The names of PRAGMA synchronous's levels 0..3. */
const SYNCHRONOUS_LEVELS = ['off', 'normal', 'full', 'extra'];

/** A batch of write operations sharing one transaction; `done` settles with its COMMIT. */
interface Batch {
  readonly done: Promise<void>;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  writes: number;
}

interface SessionRow {
  id: string;
  cls: string;
  data: string;
  user: string | null;
  created: number;
  touched: number;
  timeout: number;
  expires: number;
  deadline: number | null;
  readonly: number;
  fence: number;
  lock_key: number | null;
  lock_until: number | null;
}

/** A batch commits at the next turn of the event loop, or as soon as it holds this many writes. */
const MAX_BATCH_WRITES = 1000;
/** How many ids a LIST page holds when the caller does not say. */
const DEFAULT_LIST_COUNT = 100;
/** Sessions one statement of an unindexed FIND or LISTVAR covers (see #scanRanges). */
const SCAN_RANGE = 8_192;

/** One statement's share of a scan: sessions from `from` (inclusive when `first`) to `last`. */
interface ScanRange {
  from: string;
  /** 1 on the first range, whose start '' must include even an empty id. */
  first: 0 | 1;
  /** The range's last id; null when the range runs to the end of the table. */
  last: string | null;
}
/** A LIST page stops after scanning this many rows per requested id, live or not. */
const LIST_SCAN_FACTOR = 10;
/** Marks a LIST cursor, so that no cursor but the final one is ever "0". */
const CURSOR_PREFIX = 'i';

/** Infinity (never expires) is stored as NULL, which SQLite cannot hold as an INTEGER. */
function storedDeadline(touched: number, timeout: number, expires: number): number | null {
  const deadline = deadlineOf(touched, timeout, expires);
  return deadline === Infinity ? null : deadline;
}

/** A store `limit` as the value bound to a statement's `LIMIT ?` (absent or Infinity: every row). */
function rowLimit(limit: number | undefined): number {
  if (limit === undefined || limit === Infinity) return ALL_ROWS;
  return Math.max(0, Math.floor(limit));
}

/** A rejected promise carrying `error`, wrapped in an Error if something else was thrown. */
function rejection(error: unknown): Promise<never> {
  return Promise.reject(error instanceof Error ? error : new Error(String(error)));
}

function closedError(): SessiondError {
  return new SessiondError('ERR', 'the sqlite store is closed');
}

function encodeCursor(id: string): string {
  return CURSOR_PREFIX + Buffer.from(id, 'utf8').toString('base64url');
}

/** The id after which a page starts; null for the start. Throws ERR on a cursor we did not make. */
function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined || cursor === '0') return null;
  if (!cursor.startsWith(CURSOR_PREFIX) || !/^[A-Za-z0-9_-]*$/.test(cursor.slice(1))) {
    throw new SessiondError('ERR', 'invalid cursor');
  }
  return Buffer.from(cursor.slice(1), 'base64url').toString('utf8');
}

/**
 * A {@link Store} in one SQLite file (node:sqlite, WAL).
 *
 * Every operation runs synchronously against the database the moment it is called, so the
 * checks and writes of one operation are atomic without locks. Writes join the open
 * transaction (BEGIN IMMEDIATE when the first write of a batch arrives), which commits once
 * per turn of the event loop (or every 1000 writes): the promise of a write resolves only after
 * the COMMIT that holds it succeeded, and rejects, with the whole batch, if it failed. Reads
 * that ran inside an open transaction wait for it too, so nobody sees a write that is not
 * durable yet.
 *
 * Rejects with ERR when closed, with SQLite's error on an I/O failure or a write lock that
 * another process held past `busyTimeoutMs`.
 *
 * @example
 * const store = await SqliteStore.open({ path: 'sessions.db' });
 * await store.create({ id, cls: 'app', data: '', user: null, timeout: 1440, expires: 0, vars: new Map() }, Date.now());
 */
export class SqliteStore implements Store {
  readonly kind = 'sqlite';

  readonly #db: DatabaseSync;
  readonly #indexedVars: 'all' | ReadonlySet<string>;
  readonly #stats: SqliteStoreStats = { commits: 0, writes: 0, rollbacks: 0 };
  #batch: Batch | null = null;
  #opWrote = false;
  #closed = false;

  readonly #q: Statements;

  /** Opens (creating and migrating as needed) the database file; see {@link SqliteStore.open}. */
  constructor(options: SqliteStoreOptions) {
    const durability = options.durability ?? 'full';
    if (durability !== 'full' && durability !== 'normal') {
      throw new RangeError(`sqlite store: durability must be 'full' or 'normal'`);
    }
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    if (!Number.isSafeInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
      throw new RangeError('sqlite store: busyTimeoutMs must be a non-negative integer');
    }
    const indexed = options.indexedVars ?? [];
    this.#indexedVars = indexed === 'all' ? 'all' : new Set(indexed);

    if (options.path !== ':memory:' && options.path !== '') {
      // Session ids are bearer credentials: create the file readable by its owner only, so
      // other local users cannot lift them (SQLite gives the -wal and -shm files the same mode).
      closeSync(openSync(options.path, constants.O_RDWR | constants.O_CREAT, 0o600));
    }
    const db = new DatabaseSync(options.path, {
      timeout: busyTimeoutMs,
      // Refuses SQL that could deliberately corrupt the file (writable_schema and the like).
      defensive: true,
    });
    this.#db = db;
    try {
      db.exec('PRAGMA journal_mode = WAL');
      db.exec(durability === 'full' ? 'PRAGMA synchronous = FULL' : 'PRAGMA synchronous = NORMAL');
      // Measured with 256 concurrent writers: a batch dirties a few pages per write, so the
      // default checkpoint every 1000 pages ran after nearly every commit; every 10000 pages
      // (about 40 MB of WAL) writes a hot page back once for many commits, and a 64 MiB page
      // cache (filled only as used) keeps the b-tree off the read path: about +40% together.
      // journal_size_limit shrinks the WAL file back after a checkpoint that followed a burst.
      db.exec('PRAGMA wal_autocheckpoint = 10000');
      db.exec('PRAGMA journal_size_limit = 67108864');
      db.exec('PRAGMA cache_size = -65536');
      db.function('sessiond_deadline', { deterministic: true }, (touched, timeout, expires) =>
        storedDeadline(Number(touched), Number(timeout), Number(expires)),
      );
      migrate(db);
      this.#syncIndexedVars();
    } catch (error) {
      db.close();
      throw error;
    }

    this.#q = prepareAll(db);
  }

  /**
   * Opens the store: creates the file if needed, sets WAL and the durability, and applies the
   * schema migrations it lacks. Throws if the file is not a database or is from a newer sessiond.
   *
   * @example
   * const store = await SqliteStore.open({ path: '/var/lib/sessiond/sessions.db', durability: 'full' });
   */
  static open(options: SqliteStoreOptions): Promise<SqliteStore> {
    try {
      return Promise.resolve(new SqliteStore(options));
    } catch (error) {
      return rejection(error);
    }
  }

  /** Counters of the group commit: commits < writes means writes shared their fsyncs. */
  get stats(): Readonly<SqliteStoreStats> {
    return { ...this.#stats };
  }

  /**
   * The connection's durability settings as SQLite reports them, for INFO and tests.
   * Throws ERR when closed.
   */
  settings(): SqliteStoreSettings {
    if (this.#closed) throw closedError();
    const pragma = (name: string) => {
      // PRAGMA names cannot be bound; these are the three constants below, never input.
      const row = this.#db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>;
      return Object.values(row)[0];
    };
    return {
      journalMode: String(pragma('journal_mode')),
      synchronous: SYNCHRONOUS_LEVELS[Number(pragma('synchronous'))] ?? 'unknown',
      busyTimeoutMs: Number(pragma('busy_timeout')),
    };
  }

  create(init: SessionInit, now: number): Promise<boolean> {
    return this.#op(true, () => {
      if (this.#live(init.id, now) !== undefined) return false;
      this.#insert(init, init.data, now);
      return true;
    });
  }

  get(id: string, now: number, options: GetOptions): Promise<SessionRecord | null> {
    return this.#op(false, () => {
      const read = () => {
        const row = this.#live(id, now);
        if (row === undefined || !options.vars) return { row, vars: new Map<string, string>() };
        return { row, vars: this.#vars(id) };
      };
      // Row and variables from one snapshot, even if another process writes in between.
      const { row, vars } = options.vars ? this.#readConsistently(read) : read();
      if (row === undefined) return null;
      if (options.touch && this.#touchIfDue(row, now)) row.touched = now;
      return {
        id: row.id,
        cls: row.cls,
        data: row.data,
        user: row.user,
        timeout: row.timeout,
        expires: row.expires,
        vars,
        created: row.created,
        touched: row.touched,
        readonly: row.readonly !== 0,
        lock:
          row.lock_key !== null && row.lock_until !== null && row.lock_until > now
            ? { key: row.lock_key, until: row.lock_until }
            : null,
      };
    });
  }

  getVar(id: string, name: string, now: number): Promise<Awaited<ReturnType<Store['getVar']>>> {
    return this.#op(false, () => {
      const row = this.#q.selectVarOfLive.get(name, id, now) as
        { touched: number; readonly: number; value: string | null } | undefined;
      if (row === undefined) return NO_SESSION;
      this.#touchIfDue({ id, ...row }, now);
      return row.value ?? undefined;
    });
  }

  setVars(
    id: string,
    vars: ReadonlyArray<readonly [string, string]>,
    now: number,
    limits: StoreLimits,
  ): Promise<'ok' | 'limit' | WriteFailure> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) return 'nosession';
      if (row.readonly !== 0) return 'readonly';
      // A write attempt is an access even when refused below (LIMIT, NOTINT), in every store.
      this.#touchIfDue(row, now);
      // The last value of a repeated name wins, and a repeated name counts once.
      const latest = new Map(vars);
      const count = this.#varCount(id);
      // Only when the session could overflow is it worth looking up which names are new.
      if (count + latest.size > limits.maxVars) {
        let added = 0;
        for (const name of latest.keys()) {
          if (this.#q.selectVar.get(id, name) === undefined) added++;
        }
        if (count + added > limits.maxVars) return 'limit';
      }
      for (const [name, value] of latest)
        this.#q.upsertVar.run(id, name, value, this.#indexed(name));
      return 'ok';
    });
  }

  unsetVars(id: string, names: readonly string[], now: number): Promise<number | WriteFailure> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) return 'nosession';
      if (row.readonly !== 0) return 'readonly';
      this.#touchIfDue(row, now);
      let removed = 0;
      for (const name of new Set(names)) removed += Number(this.#q.deleteVar.run(id, name).changes);
      return removed;
    });
  }

  incVar(
    id: string,
    name: string,
    by: bigint,
    now: number,
    limits: StoreLimits,
  ): Promise<bigint | 'notint' | 'limit' | WriteFailure> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) return 'nosession';
      if (row.readonly !== 0) return 'readonly';
      this.#touchIfDue(row, now);
      const current = (this.#q.selectVar.get(id, name) as { value: string } | undefined)?.value;
      const sum = addInt64(current, by);
      if (sum === 'notint') return 'notint';
      if (current === undefined && this.#varCount(id) >= limits.maxVars) return 'limit';
      this.#q.upsertVar.run(id, name, sum.toString(), this.#indexed(name));
      return sum;
    });
  }

  setData(
    id: string,
    data: string,
    now: number,
    init: SessionInit,
  ): Promise<'updated' | 'created' | 'readonly'> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) {
        this.#insert({ ...init, id }, data, now);
        return 'created';
      }
      if (row.readonly !== 0) return 'readonly';
      this.#touchIfDue(row, now);
      this.#q.updateData.run(data, id);
      return 'updated';
    });
  }

  update(id: string, patch: SessionPatch, now: number): Promise<'ok' | WriteFailure> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) return 'nosession';
      if (row.readonly !== 0) return 'readonly';
      const timeout = patch.timeout ?? row.timeout;
      const expires = patch.expires ?? row.expires;
      const user = patch.user === undefined ? row.user : patch.user;
      const touched = now - row.touched >= TOUCH_RESOLUTION_MS ? now : row.touched;
      this.#q.updateMeta.run(
        user,
        touched,
        timeout,
        expires,
        storedDeadline(touched, timeout, expires),
        id,
      );
      return 'ok';
    });
  }

  touch(id: string, now: number): Promise<boolean> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) return false;
      // A grace copy is frozen: touching it must not stretch the window of the old id.
      if (row.readonly !== 0) return true;
      this.#q.touchNow.run(now, storedDeadline(now, row.timeout, row.expires), id);
      return true;
    });
  }

  destroy(id: string, now: number): Promise<boolean> {
    return this.#op(true, () => {
      const row = this.#q.selectDeadline.get(id) as { deadline: number | null } | undefined;
      if (row === undefined) return false;
      this.#remove(id);
      return row.deadline === null || row.deadline > now;
    });
  }

  regenerate(
    oldId: string,
    newId: string,
    graceMs: number,
    now: number,
  ): Promise<'ok' | 'exists' | WriteFailure> {
    return this.#op(true, () => {
      const row = this.#live(oldId, now);
      if (row === undefined) return 'nosession';
      // A grace copy cannot be regenerated again, or a stolen old id could mint fresh ones.
      if (row.readonly !== 0) return 'readonly';
      if (this.#live(newId, now) !== undefined) return 'exists';
      this.#remove(newId);
      this.#q.insertSession.run(
        newId,
        row.cls,
        row.data,
        row.user,
        row.created,
        now,
        row.timeout,
        row.expires,
        storedDeadline(now, row.timeout, row.expires),
        0,
        row.fence,
        row.lock_key,
        row.lock_until,
      );
      if (graceMs > 0) {
        this.#q.copyVars.run(newId, oldId);
        // The old id only serves requests already in flight: read-only, unlocked, and gone
        // after graceMs, so a fixated or stolen old id is worth little.
        const expires = Math.min(row.expires > 0 ? row.expires : Infinity, now + graceMs);
        this.#q.makeGraceCopy.run(
          expires,
          storedDeadline(row.touched, row.timeout, expires),
          oldId,
        );
      } else {
        this.#q.moveVars.run(newId, oldId);
        this.#q.deleteSession.run(oldId);
      }
      return 'ok';
    });
  }

  find(name: string, value: string, now: number, limit?: number): Promise<string[]> {
    if (this.#indexed(name) !== 1) {
      const rows = this.#scanVar<{ id: string }>('find', now, name, value, limit);
      return rows.then((found) => found.map((row) => row.id));
    }
    return this.#op(false, () =>
      (this.#q.findIndexed.all(now, name, value, rowLimit(limit)) as Array<{ id: string }>).map(
        (row) => row.id,
      ),
    );
  }

  listVar(name: string, now: number, limit?: number): Promise<Array<[string, string]>> {
    type Row = { id: string; value: string };
    if (this.#indexed(name) !== 1) {
      const rows = this.#scanVar<Row>('listVar', now, name, null, limit);
      return rows.then((found) => found.map((row): [string, string] => [row.id, row.value]));
    }
    return this.#op(false, () =>
      (this.#q.listVarIndexed.all(now, name, rowLimit(limit)) as Row[]).map(
        (row): [string, string] => [row.id, row.value],
      ),
    );
  }

  /** The rows of FIND (name = value) or LISTVAR (value null) for an unindexed name, by ranges. */
  #scanVar<R>(
    kind: 'find' | 'listVar',
    now: number,
    name: string,
    value: string | null,
    limit?: number,
  ) {
    const [scan, tail] =
      kind === 'find'
        ? [this.#q.findScan, this.#q.findScanTail]
        : [this.#q.listVarScan, this.#q.listVarScanTail];
    return this.#scanRanges(
      limit,
      (range, left) =>
        (range.last === null ? tail : scan).all(
          now,
          name,
          value,
          range.from,
          range.first,
          range.last,
          left,
        ) as R[],
    );
  }

  /**
   * A scan of an unindexed name, SCAN_RANGE sessions (in id order) per statement with a turn of
   * the event loop between: defends against one FIND over a large store stalling every other
   * client for seconds (node:sqlite runs a statement to its end on this thread). As Redis's SCAN,
   * it finds every session that is live and matching throughout, once; others may or may not be.
   */
  async #scanRanges<R>(limit: number | undefined, read: (range: ScanRange, left: number) => R[]) {
    const found: R[] = [];
    const wanted = rowLimit(limit);
    let range: ScanRange = { from: '', first: 1, last: null };
    for (;;) {
      const page = await this.#op(false, () => {
        const end = this.#q.scanRangeEnd.get(range.from, range.first, SCAN_RANGE) as
          { id: string } | undefined;
        range.last = end?.id ?? null;
        return read(range, wanted === ALL_ROWS ? ALL_ROWS : wanted - found.length);
      });
      for (const row of page) found.push(row);
      if (range.last === null || (wanted !== ALL_ROWS && found.length >= wanted)) return found;
      range = { from: range.last, first: 0, last: null };
      await turn();
    }
  }

  list(now: number, options: ListOptions): Promise<ListPage> {
    let after: string | null;
    try {
      // Decoded before any statement runs: a bad cursor must not disturb an open batch.
      after = decodeCursor(options.cursor);
    } catch (error) {
      return rejection(error);
    }
    const paged = options.cursor !== undefined || options.count !== undefined;
    const wanted = options.count ?? DEFAULT_LIST_COUNT;
    const count = Number.isSafeInteger(wanted) && wanted > 0 ? wanted : DEFAULT_LIST_COUNT;
    return this.#op(false, () => {
      if (!paged) {
        const limit = rowLimit(options.limit);
        const rows =
          options.cls === undefined
            ? this.#q.listAll.all(now, limit)
            : this.#q.listAllCls.all(options.cls, now, limit);
        return { cursor: '0', ids: (rows as Array<{ id: string }>).map((row) => row.id) };
      }
      // Pages walk the primary key (or sessions_cls) in id order, which touches do not change,
      // so a session live for the whole listing shows up exactly once. A page reads at most
      // `count * LIST_SCAN_FACTOR` rows, so a backlog of expired rows awaiting the sweep can
      // make it short (as a Redis SCAN page may be) but never slow.
      const scan = count * LIST_SCAN_FACTOR;
      const rows =
        options.cls === undefined
          ? this.#q.listPage.iterate(after ?? '', after === null ? 1 : 0, now)
          : this.#q.listPageCls.iterate(after ?? '', after === null ? 1 : 0, now, options.cls);
      const ids: string[] = [];
      let scanned = 0;
      for (const row of rows as Iterable<{ id: string; live: number }>) {
        scanned++;
        if (row.live !== 0) ids.push(row.id);
        // Leaving the loop early resets the statement (the iterator's return()).
        if (ids.length === count || scanned === scan) return { cursor: encodeCursor(row.id), ids };
      }
      return { cursor: '0', ids };
    });
  }

  count(now: number, cls?: string): Promise<number> {
    return this.#op(false, () => {
      const row = (
        cls === undefined ? this.#q.countLive.get(now) : this.#q.countLiveCls.get(cls, now)
      ) as { n: number };
      return row.n;
    });
  }

  lock(id: string, leaseMs: number, now: number): Promise<LockAttempt> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) return 'nosession';
      if (row.lock_until !== null && row.lock_until > now) {
        return { acquired: false, heldUntil: row.lock_until };
      }
      // Keys only grow, even across unlocks, so a holder whose lease ran out cannot release
      // (or be mistaken for) the next holder: a fencing token.
      const key = row.fence + 1;
      const until = now + leaseMs;
      this.#q.updateLock.run(key, key, until, id);
      return { acquired: true, key, until };
    });
  }

  unlock(id: string, key: number, now: number): Promise<boolean> {
    return this.#op(true, () => {
      const row = this.#live(id, now);
      if (row === undefined) return false;
      // Only the current holder, within its lease, may release: msession let anyone unlock.
      if (row.lock_key !== key || row.lock_until === null || row.lock_until <= now) return false;
      this.#q.updateLock.run(row.fence, null, null, id);
      return true;
    });
  }

  userSessions(user: string, now: number, limit?: number): Promise<string[]> {
    return this.#op(false, () =>
      (this.#q.userSessions.all(user, now, rowLimit(limit)) as Array<{ id: string }>).map(
        (row) => row.id,
      ),
    );
  }

  destroyUser(user: string, except: string | null, now: number): Promise<string[]> {
    return this.#op(true, () => {
      const ids = (this.#q.userSessions.all(user, now, ALL_ROWS) as Array<{ id: string }>)
        .map((row) => row.id)
        .filter((id) => id !== except);
      for (const id of ids) this.#remove(id);
      return ids;
    });
  }

  sweep(now: number, limit: number): Promise<ExpiredSession[]> {
    return this.#op(true, () => {
      // Bounded by `limit` and found through sessions_deadline, so one call never holds the
      // event loop for long however many sessions expired at once.
      const expired = this.#q.selectExpired.all(now, Math.max(0, Math.floor(limit))) as Array<{
        id: string;
        cls: string;
      }>;
      for (const { id } of expired) this.#remove(id);
      return expired.map(({ id, cls }) => ({ id, cls }));
    });
  }

  empty(now: number): Promise<number> {
    return this.#op(true, () => {
      const live = (this.#q.countLive.get(now) as { n: number }).n;
      this.#q.deleteAllVars.run();
      this.#q.deleteAllSessions.run();
      return live;
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const batch = this.#batch;
    if (batch !== null) this.#commitBatch();
    this.#db.close();
    // The pending writes learn the outcome from their own promises; close reports it too.
    if (batch !== null) await batch.done;
  }

  /**
   * Runs one operation synchronously. `write` opens (or joins) the batch transaction before
   * the body reads anything, so the body's checks and writes are one atomic step.
   */
  #op<T>(write: boolean, body: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    this.#opWrote = false;
    let result: T;
    try {
      if (write) this.#beginWrite();
      result = body();
    } catch (error) {
      // A statement failed half way through an operation: undo the whole batch rather than
      // commit a partial write of this one alongside the others.
      this.#abortBatch(error);
      return rejection(error);
    }
    const batch = this.#batch;
    if (batch === null) return Promise.resolve(result);
    if (this.#opWrote) {
      batch.writes++;
      this.#stats.writes++;
      if (batch.writes >= MAX_BATCH_WRITES) this.#commitBatch();
    }
    // Whatever ran inside the open transaction may have seen its writes: hold the answer
    // until they are durable.
    return batch.done.then(() => result);
  }

  /** Joins the open batch, or begins one whose COMMIT runs at the next turn of the event loop. */
  #beginWrite(): void {
    this.#opWrote = true;
    if (this.#batch !== null) return;
    this.#q.begin.run();
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // Failures reach the callers through their own promises; this one needs no handler.
    done.catch(() => {});
    const batch: Batch = { done, resolve, reject, writes: 0 };
    this.#batch = batch;
    setImmediate(() => {
      if (this.#batch === batch) this.#commitBatch();
    });
  }

  #commitBatch(): void {
    const batch = this.#batch;
    if (batch === null) return;
    this.#batch = null;
    try {
      this.#q.commit.run();
      this.#stats.commits++;
      batch.resolve();
    } catch (error) {
      this.#stats.rollbacks++;
      this.#rollbackQuietly();
      batch.reject(error);
    }
  }

  #abortBatch(error: unknown): void {
    const batch = this.#batch;
    this.#batch = null;
    this.#rollbackQuietly();
    if (batch === null) return;
    this.#stats.rollbacks++;
    batch.reject(error);
  }

  #rollbackQuietly(): void {
    // SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR).
    if (!this.#db.isOpen || !this.#db.isTransaction) return;
    try {
      this.#q.rollback.run();
    } catch {
      // Nothing more to undo; the original error is what the callers need to see.
    }
  }

  /** Runs reads in one snapshot: the open batch's transaction, or a short read transaction. */
  #readConsistently<T>(read: () => T): T {
    if (this.#db.isTransaction) return read();
    this.#q.beginRead.run();
    try {
      return read();
    } finally {
      this.#q.commit.run();
    }
  }

  /** Live row of `id`: expired rows count as absent whether or not the sweep removed them. */
  #live(id: string, now: number): SessionRow | undefined {
    return this.#q.selectLive.get(id, now) as SessionRow | undefined;
  }

  #vars(id: string): Map<string, string> {
    const vars = new Map<string, string>();
    for (const row of this.#q.selectVars.all(id) as Array<{ name: string; value: string }>) {
      vars.set(row.name, row.value);
    }
    return vars;
  }

  #varCount(id: string): number {
    return (this.#q.countVars.get(id) as { n: number }).n;
  }

  #indexed(name: string): 0 | 1 {
    return this.#indexedVars === 'all' || this.#indexedVars.has(name) ? 1 : 0;
  }

  /** Records an access at most once per TOUCH_RESOLUTION_MS; never on a grace copy. True if it did. */
  #touchIfDue(row: { id: string; touched: number; readonly: number }, now: number): boolean {
    if (row.readonly !== 0 || now - row.touched < TOUCH_RESOLUTION_MS) return false;
    this.#beginWrite();
    return this.#q.touchDue.run(now, row.id, TOUCH_RESOLUTION_MS).changes > 0;
  }

  /** Inserts a fresh session, replacing an expired row (and its variables) with that id. */
  #insert(init: SessionInit, data: string, now: number): void {
    this.#remove(init.id);
    this.#q.insertSession.run(
      init.id,
      init.cls,
      data,
      init.user,
      now,
      now,
      init.timeout,
      init.expires,
      storedDeadline(now, init.timeout, init.expires),
      0,
      0,
      null,
      null,
    );
    for (const [name, value] of init.vars) {
      this.#q.upsertVar.run(init.id, name, value, this.#indexed(name));
    }
  }

  #remove(id: string): void {
    this.#q.deleteVars.run(id);
    this.#q.deleteSession.run(id);
  }

  /**
   * Makes vars.indexed agree with the indexedVars option, when it differs from the one the file
   * was last opened with; the partial index vars_find follows the column.
   */
  #syncIndexedVars(): void {
    const db = this.#db;
    const wanted = JSON.stringify(
      this.#indexedVars === 'all' ? 'all' : [...this.#indexedVars].sort(),
    );
    const stored = db.prepare("SELECT value FROM meta WHERE key = 'indexed_vars'").get() as
      { value: string } | undefined;
    if (stored?.value === wanted) return;
    db.exec('BEGIN IMMEDIATE');
    try {
      if (this.#indexedVars === 'all') {
        db.exec('UPDATE vars SET indexed = 1 WHERE indexed = 0');
      } else {
        db.exec('CREATE TEMP TABLE indexed_names (name TEXT NOT NULL PRIMARY KEY) WITHOUT ROWID');
        const insert = db.prepare('INSERT INTO temp.indexed_names (name) VALUES (?)');
        for (const name of this.#indexedVars) insert.run(name);
        db.exec(`UPDATE vars SET indexed = (name IN temp.indexed_names)
                 WHERE indexed <> (name IN temp.indexed_names)`);
        db.exec('DROP TABLE temp.indexed_names');
      }
      db.prepare(
        "INSERT INTO meta (key, value) VALUES ('indexed_vars', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      ).run(wanted);
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }
}
