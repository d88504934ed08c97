/**
 * The shared store: sessions in one PostgreSQL schema, so several stateless sessiond servers can
 * serve one set of sessions. Every atomic rule runs in the database (see schema.ts).
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SessiondError } from '../../errors.ts';
import {
  NO_SESSION,
  TOUCH_RESOLUTION_MS,
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
import { PostgresEvents } from './events.ts';
import { buildQueries, type Queries, type RecordRow } from './queries.ts';
import { advisoryKey, migrate, quoteSchema } from './schema.ts';

/** Options of {@link PostgresStore.open}. */
export interface PostgresStoreOptions {
  /** A libpq-style URL: postgres://user:password@host:port/database?sslmode=... */
  url: string;
  /**
   * The schema that holds the store's tables, created and migrated on open; default 'sessiond'.
   * A plain lower-case identifier of at most 56 characters (its event channel is `<schema>_events`).
   */
  schema?: string;
  /**
   * The variable names FIND and LISTVAR answer through an index, or 'all'; default none. Other
   * names still work, by scanning. All servers sharing a schema should give the same list: the
   * last one to open re-flags the stored variables to its own.
   */
  indexedVars?: readonly string[] | 'all';
  /** Connections in the pool; default 10. */
  poolSize?: number;
  /** How long an operation waits for a connection before it fails; default 10000 ms. */
  connectionTimeoutMs?: number;
  /** How long an unused pooled connection stays open; default 10000 ms. */
  idleTimeoutMs?: number;
  /**
   * Carry the engine's events to every server through LISTEN/NOTIFY (one more connection per
   * server); default true. Off, each server hears only its own events.
   */
  events?: boolean;
  /** Where errors outside any operation go (a dropped idle or listening connection). */
  onError?: (error: unknown) => void;
}

/** How many ids a LIST page holds when the caller does not say. */
const DEFAULT_LIST_COUNT = 100;
/** A LIST page stops after scanning this many rows per requested id, live or not. */
const LIST_SCAN_FACTOR = 10;
/** Marks a LIST cursor, so that no cursor but the final one is ever "0". */
const CURSOR_PREFIX = 'i';
/** The most sessions one sweep() removes, whatever limit it is given. */
const MAX_SWEEP_BATCH = 100_000;
/** How often a statement runs when PostgreSQL aborts it as a deadlock's victim. */
const MAX_ATTEMPTS = 3;
/** Schema names short enough that `<schema>_events` fits PostgreSQL's 63-byte identifiers. */
const MAX_SCHEMA_LENGTH = 56;

/** A byte string (one byte per code unit) as the bytea it is stored as. */
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
/** A bytea back as a byte string. */
const str = (b: Buffer): string => b.toString('latin1');

/** A store `limit` as the value bound to a statement's LIMIT: NULL (absent, Infinity) is none. */
function rowLimit(limit: number | undefined): number | null {
  if (limit === undefined || limit === Infinity) return null;
  return Math.max(0, Math.floor(limit));
}

function closedError(): SessiondError {
  return new SessiondError('ERR', 'the postgres store is closed');
}

function encodeCursor(id: Buffer): string {
  return CURSOR_PREFIX + id.toString('base64url');
}

/** The id after which a page starts; null for the start. Throws ERR on a cursor we did not make. */
function decodeCursor(cursor: string | undefined): Buffer | null {
  if (cursor === undefined || cursor === '0') return null;
  if (!cursor.startsWith(CURSOR_PREFIX) || !/^[A-Za-z0-9_-]*$/.test(cursor.slice(1))) {
    throw new SessiondError('ERR', 'invalid cursor');
  }
  return Buffer.from(cursor.slice(1), 'base64url');
}

/** PostgreSQL's type id of bigint. */
const INT8_OID = 20;

/** bigint columns (times, counts, keys) as numbers: milliseconds since the epoch fit in 2^53. */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID
      ? Number
      : (pg.types.getTypeParser(oid, format) as unknown)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * A {@link Store} in a PostgreSQL schema, shared by any number of sessiond servers.
 *
 * Each operation is one statement, most of them a call of a PL/pgSQL function from schema.ts,
 * so it is one round trip and one transaction, and every rule (create-if-absent, the variable
 * limit, INC, leased and fenced locks, the user index, REGENERATE, the sweep) holds across
 * servers. `now` always comes from the caller: the database clock is never read, so servers
 * must keep their clocks in step (NTP) as they would for any shared expiry.
 *
 * Rejects with ERR when closed, and with the driver's error when the database fails.
 *
 * @example
 * const store = await PostgresStore.open({ url: 'postgres://sessiond@db/sessions' });
 * const engine = new Engine({ store });
 */
export class PostgresStore implements Store {
  readonly kind = 'postgres';
  /** The LISTEN/NOTIFY transport of the engine's events, unless opened with `events: false`. */
  readonly events?: PostgresEvents;

  readonly #pool: pg.Pool;
  readonly #connection: pg.ClientConfig;
  readonly #schema: string;
  readonly #q: Queries;
  readonly #indexedVars: 'all' | ReadonlySet<string>;
  readonly #onError: (error: unknown) => void;
  #closed = false;
  /** The dedicated connection that holds (or tries for) the sweep leader's advisory lock. */
  #leader: pg.Client | null = null;
  #leading = false;
  #leaderTurn: Promise<unknown> = Promise.resolve();

  private constructor(options: PostgresStoreOptions, schema: string, eventsKey: Buffer) {
    this.#schema = schema;
    this.#q = buildQueries(quoteSchema(schema));
    this.#indexedVars = indexedSet(options.indexedVars);
    this.#onError =
      options.onError ?? ((error: unknown) => console.error('sessiond: postgres store:', error));
    this.#connection = connectionConfig(options);
    this.#pool = new pg.Pool({
      ...this.#connection,
      max: options.poolSize ?? 10,
      idleTimeoutMillis: options.idleTimeoutMs ?? 10_000,
      // pg-pool awaits this before it hands the connection out (@types/pg types it void). The
      // functions rely on READ COMMITTED, where each statement in them takes a fresh snapshot,
      // whatever default the role or database was given.
      // eslint-disable-next-line @typescript-eslint/no-misused-promises
      onConnect: async (client) => {
        await client.query(
          'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED',
        );
      },
    });
    // A pooled connection that dies while idle (a database restart) must not crash the server.
    this.#pool.on('error', (error) => {
      if (!this.#closed) this.#onError(error);
    });
    if (options.events !== false) {
      this.events = new PostgresEvents({
        connection: this.#connection,
        channel: `${schema}_events`,
        notify: (channel, payload) =>
          this.#pool.query('SELECT pg_notify($1, $2)', [channel, payload]),
        key: eventsKey,
        onError: this.#onError,
      });
    }
  }

  /**
   * Connects, creates the schema if needed and applies the migrations it lacks (under an
   * advisory lock, so servers starting together do not race).
   * @throws RangeError on a bad option; the driver's error when the database cannot be reached;
   *   Error when the schema was written by a newer sessiond
   *
   * @example
   * const store = await PostgresStore.open({ url: process.env.DATABASE_URL!, indexedVars: ['user'] });
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? 'sessiond';
    quoteSchema(schema);
    if (schema.length > MAX_SCHEMA_LENGTH) {
      throw new RangeError(
        `postgres store: schema names are at most ${MAX_SCHEMA_LENGTH} characters`,
      );
    }
    const poolSize = options.poolSize ?? 10;
    if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
      throw new RangeError('postgres store: poolSize must be a positive integer');
    }
    // One connection of its own for the schema work, before the pool and the listener exist.
    const client = new pg.Client(connectionConfig(options));
    // Its failures reach us through the awaited calls; the event would otherwise crash the process.
    client.on('error', () => {});
    await client.connect();
    let eventsKey: Buffer;
    try {
      await migrate(client, schema);
      const q = buildQueries(quoteSchema(schema));
      eventsKey = await readEventsKey(client, q);
      await syncIndexedVars(client, q, schema, indexedSet(options.indexedVars));
    } finally {
      await client.end().catch(() => {});
    }
    return new PostgresStore(options, schema, eventsKey);
  }

  /** The schema this store keeps its tables in. */
  get schema(): string {
    return this.#schema;
  }

  async create(init: SessionInit, now: number): Promise<boolean> {
    const [names, values, indexed] = this.#varArrays(init.vars);
    const { rows } = await this.#query<{ created: boolean }>('create', [
      bytes(init.id),
      bytes(init.cls),
      bytes(init.data),
      init.user === null ? null : bytes(init.user),
      init.timeout,
      init.expires,
      now,
      names,
      values,
      indexed,
    ]);
    return rows[0]?.created === true;
  }

  async get(id: string, now: number, options: GetOptions): Promise<SessionRecord | null> {
    const name = options.touch
      ? options.vars
        ? 'getFull'
        : 'getMeta'
      : options.vars
        ? 'getFullNoTouch'
        : 'getMetaNoTouch';
    const params: unknown[] = [bytes(id), now];
    if (options.touch) params.push(TOUCH_RESOLUTION_MS);
    const { rows } = await this.#query<RecordRow>(name, params);
    const row = rows[0];
    if (row === undefined) return null;
    const vars = new Map<string, string>();
    const names = row.names ?? [];
    const values = row.values ?? [];
    for (let i = 0; i < names.length; i++) vars.set(str(names[i]!), str(values[i]!));
    return {
      id,
      cls: str(row.cls),
      data: str(row.data),
      user: row.user === null ? null : str(row.user),
      timeout: row.timeout,
      expires: row.expires,
      vars,
      created: row.created,
      touched: row.touched,
      readonly: row.readonly,
      lock:
        row.lock_key !== null && row.lock_until !== null && row.lock_until > now
          ? { key: row.lock_key, until: row.lock_until }
          : null,
    };
  }

  async getVar(
    id: string,
    name: string,
    now: number,
  ): Promise<Awaited<ReturnType<Store['getVar']>>> {
    const { rows } = await this.#query<{ value: Buffer | null }>('getVar', [
      bytes(id),
      now,
      TOUCH_RESOLUTION_MS,
      bytes(name),
    ]);
    const row = rows[0];
    if (row === undefined) return NO_SESSION;
    return row.value === null ? undefined : str(row.value);
  }

  async setVars(
    id: string,
    vars: ReadonlyArray<readonly [string, string]>,
    now: number,
    limits: StoreLimits,
  ): Promise<'ok' | 'limit' | WriteFailure> {
    // The last value of a repeated name wins, and a repeated name counts once (one INSERT
    // cannot touch a row twice, either).
    const [names, values, indexed] = this.#varArrays(new Map(vars));
    const { rows } = await this.#query<{ outcome: 'ok' | 'limit' | WriteFailure }>('setVars', [
      bytes(id),
      now,
      TOUCH_RESOLUTION_MS,
      names,
      values,
      indexed,
      limits.maxVars,
    ]);
    return rows[0]!.outcome;
  }

  async unsetVars(
    id: string,
    names: readonly string[],
    now: number,
  ): Promise<number | WriteFailure> {
    const { rows } = await this.#query<{ removed: number }>('unsetVars', [
      bytes(id),
      now,
      TOUCH_RESOLUTION_MS,
      [...new Set(names)].map(bytes),
    ]);
    const removed = rows[0]!.removed;
    return removed === -1 ? 'nosession' : removed === -2 ? 'readonly' : removed;
  }

  async incVar(
    id: string,
    name: string,
    by: bigint,
    now: number,
    limits: StoreLimits,
  ): Promise<bigint | 'notint' | 'limit' | WriteFailure> {
    const { rows } = await this.#query<{
      status: 'ok' | 'notint' | 'limit' | WriteFailure;
      result: string | null;
    }>('incVar', [
      bytes(id),
      bytes(name),
      by.toString(),
      now,
      TOUCH_RESOLUTION_MS,
      this.#indexed(name),
      limits.maxVars,
    ]);
    const row = rows[0]!;
    return row.status === 'ok' ? BigInt(row.result!) : row.status;
  }

  async setData(
    id: string,
    data: string,
    now: number,
    init: SessionInit,
  ): Promise<'updated' | 'created' | 'readonly'> {
    const [names, values, indexed] = this.#varArrays(init.vars);
    const { rows } = await this.#query<{ outcome: 'updated' | 'created' | 'readonly' }>('setData', [
      bytes(id),
      bytes(data),
      now,
      TOUCH_RESOLUTION_MS,
      bytes(init.cls),
      init.user === null ? null : bytes(init.user),
      init.timeout,
      init.expires,
      names,
      values,
      indexed,
    ]);
    return rows[0]!.outcome;
  }

  async update(id: string, patch: SessionPatch, now: number): Promise<'ok' | WriteFailure> {
    const { rows } = await this.#query<{ outcome: 'ok' | WriteFailure }>('update', [
      bytes(id),
      now,
      TOUCH_RESOLUTION_MS,
      patch.timeout !== undefined,
      patch.timeout ?? 0,
      patch.expires !== undefined,
      patch.expires ?? 0,
      patch.user !== undefined,
      patch.user == null ? null : bytes(patch.user),
    ]);
    return rows[0]!.outcome;
  }

  async touch(id: string, now: number): Promise<boolean> {
    const { rows } = await this.#query<{ live: boolean }>('touch', [bytes(id), now]);
    return rows[0]?.live === true;
  }

  async destroy(id: string, now: number): Promise<boolean> {
    const { rows } = await this.#query<{ live: boolean | null }>('destroy', [bytes(id), now]);
    return rows[0]?.live === true;
  }

  async regenerate(
    oldId: string,
    newId: string,
    graceMs: number,
    now: number,
  ): Promise<'ok' | 'exists' | WriteFailure> {
    const { rows } = await this.#query<{ outcome: 'ok' | 'exists' | WriteFailure }>('regenerate', [
      bytes(oldId),
      bytes(newId),
      graceMs,
      now,
    ]);
    return rows[0]!.outcome;
  }

  async find(name: string, value: string, now: number, limit?: number): Promise<string[]> {
    const { rows } = await this.#query<{ sid: Buffer }>(
      this.#indexed(name) ? 'findIndexed' : 'findScan',
      [now, bytes(name), bytes(value), rowLimit(limit)],
    );
    return rows.map((row) => str(row.sid));
  }

  async listVar(name: string, now: number, limit?: number): Promise<Array<[string, string]>> {
    const { rows } = await this.#query<{ sid: Buffer; value: Buffer }>(
      this.#indexed(name) ? 'listVarIndexed' : 'listVarScan',
      [now, bytes(name), rowLimit(limit)],
    );
    return rows.map((row) => [str(row.sid), str(row.value)]);
  }

  async list(now: number, options: ListOptions): Promise<ListPage> {
    const after = decodeCursor(options.cursor);
    if (options.cursor === undefined && options.count === undefined) {
      const limit = rowLimit(options.limit);
      const { rows } =
        options.cls === undefined
          ? await this.#query<{ id: Buffer }>('listAll', [now, limit])
          : await this.#query<{ id: Buffer }>('listAllCls', [now, limit, bytes(options.cls)]);
      return { cursor: '0', ids: rows.map((row) => str(row.id)) };
    }
    const wanted = options.count ?? DEFAULT_LIST_COUNT;
    const count = Number.isSafeInteger(wanted) && wanted > 0 ? wanted : DEFAULT_LIST_COUNT;
    // A page reads at most `count * LIST_SCAN_FACTOR` rows, so a backlog of expired rows
    // awaiting the sweep can make it short (as a Redis SCAN page may be) but never slow.
    const scan = count * LIST_SCAN_FACTOR;
    const params: unknown[] = [now, scan];
    if (options.cls !== undefined) params.push(bytes(options.cls));
    if (after !== null) params.push(after);
    const name =
      options.cls === undefined
        ? after === null
          ? 'listFirstPage'
          : 'listNextPage'
        : after === null
          ? 'listFirstPageCls'
          : 'listNextPageCls';
    const { rows } = await this.#query<{ id: Buffer; live: boolean }>(name, params);
    const ids: string[] = [];
    for (const row of rows) {
      if (row.live) ids.push(str(row.id));
      if (ids.length === count) return { cursor: encodeCursor(row.id), ids };
    }
    const last = rows.at(-1);
    return rows.length === scan && last !== undefined
      ? { cursor: encodeCursor(last.id), ids }
      : { cursor: '0', ids };
  }

  async count(now: number, cls?: string): Promise<number> {
    const { rows } =
      cls === undefined
        ? await this.#query<{ n: number }>('countLive', [now])
        : await this.#query<{ n: number }>('countLiveCls', [now, bytes(cls)]);
    return rows[0]!.n;
  }

  async lock(id: string, leaseMs: number, now: number): Promise<LockAttempt> {
    const { rows } = await this.#query<{
      status: 'acquired' | 'held' | 'nosession';
      key: number | null;
      until: number | null;
    }>('lock', [bytes(id), leaseMs, now]);
    const row = rows[0]!;
    if (row.status === 'nosession') return 'nosession';
    if (row.status === 'held') return { acquired: false, heldUntil: row.until! };
    return { acquired: true, key: row.key!, until: row.until! };
  }

  async unlock(id: string, key: number, now: number): Promise<boolean> {
    const result = await this.#query('unlock', [bytes(id), key, now]);
    return result.rowCount === 1;
  }

  async userSessions(user: string, now: number, limit?: number): Promise<string[]> {
    const { rows } = await this.#query<{ id: Buffer }>('userSessions', [
      bytes(user),
      now,
      rowLimit(limit),
    ]);
    return rows.map((row) => str(row.id));
  }

  async destroyUser(user: string, except: string | null, now: number): Promise<string[]> {
    const { rows } = await this.#query<{ ids: Buffer[] }>('destroyUser', [
      bytes(user),
      now,
      except === null ? null : bytes(except),
    ]);
    return rows[0]!.ids.map(str);
  }

  async sweep(now: number, limit: number): Promise<ExpiredSession[]> {
    // Bounded, so one call never holds rows (or the connection) for long.
    const batch = Math.max(0, Math.floor(Math.min(limit, MAX_SWEEP_BATCH)));
    if (this.#closed) throw closedError();
    if (batch === 0) return [];
    const { rows } = await this.#query<{ id: Buffer; cls: Buffer }>('sweep', [now, batch]);
    return rows.map((row) => ({ id: str(row.id), cls: str(row.cls) }));
  }

  async empty(now: number): Promise<number> {
    const { rows } = await this.#query<{ n: number }>('empty', [now]);
    return rows[0]!.n;
  }

  /**
   * Whether this server is the sweep leader, trying to become it if not. The leader holds a
   * session-level advisory lock (pg_try_advisory_lock) on a dedicated connection; it keeps it
   * until close(), resignSweep() or the connection drops, when another server's next call takes
   * over. A server's sweeper calls this on each tick and sweeps only when it answers true:
   *
   * @example
   * setInterval(async () => { if (await store.tryLeadSweep()) await engine.gc(); }, 1000);
   *
   * The lock only saves work: sweep() takes rows with SKIP LOCKED, so even two servers sweeping
   * at once, as during a takeover, never report an expiry twice.
   * @throws ERR when closed; the driver's error when the database cannot be reached
   */
  tryLeadSweep(): Promise<boolean> {
    return this.#leaderStep(async () => {
      if (this.#closed) throw closedError();
      const client = this.#leader ?? (await this.#connectLeader());
      if (this.#leading) {
        // The lock lives as long as the connection: check the connection is still there.
        await client.query('SELECT 1');
        return true;
      }
      const { rows } = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock($1::bigint) AS ok',
        [advisoryKey(this.#schema, 'sweep')],
      );
      this.#leading = rows[0]?.ok === true;
      return this.#leading;
    });
  }

  /** Gives up the sweep leadership, if held, so another server takes it on its next try. */
  resignSweep(): Promise<void> {
    return this.#leaderStep(async () => {
      const client = this.#leader;
      this.#leader = null;
      this.#leading = false;
      await client?.end().catch(() => {});
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.events?.close();
    await this.resignSweep();
    await this.#pool.end();
  }

  /** Runs one statement of the store by name, as a prepared statement of each connection. */
  async #query<R extends pg.QueryResultRow>(
    name: keyof Queries,
    values: unknown[],
  ): Promise<pg.QueryResult<R>> {
    for (let attempt = 1; ; attempt++) {
      if (this.#closed) throw closedError();
      try {
        return await this.#pool.query<R>({ name, text: this.#q[name], values });
      } catch (error) {
        // Each statement is its own transaction, rolled back whole when PostgreSQL picks it as
        // a deadlock's victim (two servers emptying and revoking at once): run it again.
        const code = (error as { code?: unknown }).code;
        if (attempt >= MAX_ATTEMPTS || (code !== '40P01' && code !== '40001')) throw error;
      }
    }
  }

  /** Names, values and index flags as the three parallel arrays the functions take. */
  #varArrays(vars: ReadonlyMap<string, string>): [Buffer[], Buffer[], boolean[]] {
    const names: Buffer[] = [];
    const values: Buffer[] = [];
    const indexed: boolean[] = [];
    for (const [name, value] of vars) {
      names.push(bytes(name));
      values.push(bytes(value));
      indexed.push(this.#indexed(name));
    }
    return [names, values, indexed];
  }

  #indexed(name: string): boolean {
    return this.#indexedVars === 'all' || this.#indexedVars.has(name);
  }

  /** One leadership step at a time, so two overlapping calls cannot open two connections. */
  #leaderStep<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#leaderTurn.then(step, step);
    this.#leaderTurn = next.catch(() => {});
    return next;
  }

  async #connectLeader(): Promise<pg.Client> {
    const client = new pg.Client(this.#connection);
    const lost = (error?: unknown) => {
      if (this.#leader !== client) return;
      // A dropped connection released the lock on the server's side.
      this.#leader = null;
      this.#leading = false;
      if (error !== undefined) this.#onError(error);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    this.#leader = client;
    return client;
  }
}

function indexedSet(indexed: PostgresStoreOptions['indexedVars']): 'all' | ReadonlySet<string> {
  return indexed === 'all' ? 'all' : new Set(indexed ?? []);
}

function connectionConfig(options: PostgresStoreOptions): pg.ClientConfig {
  return {
    connectionString: options.url,
    application_name: 'sessiond',
    types: TYPES,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 10_000,
  };
}

/** The schema's key for event payloads, made by the first server that opens it. */
async function readEventsKey(client: pg.ClientBase, q: Queries): Promise<Buffer> {
  await client.query(q.insertEventsKey, [randomBytes(32).toString('base64')]);
  const { rows } = await client.query<{ value: string }>(q.selectEventsKey);
  return Buffer.from(rows[0]!.value, 'base64');
}

/**
 * Makes vars.indexed agree with the indexedVars option, when it differs from the one the schema
 * was last opened with; the partial index vars_find follows the column.
 */
async function syncIndexedVars(
  client: pg.ClientBase,
  q: Queries,
  schema: string,
  indexed: 'all' | ReadonlySet<string>,
): Promise<void> {
  const wanted = JSON.stringify(indexed === 'all' ? 'all' : [...indexed].sort());
  const current = await client.query<{ value: string }>(q.selectIndexedVars);
  if (current.rows[0]?.value === wanted) return;
  await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
  try {
    // Two servers opening at once re-flag one after the other, not interleaved.
    await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [
      advisoryKey(schema, 'indexed-vars'),
    ]);
    if (indexed === 'all') await client.query(q.flagAllIndexed);
    else await client.query(q.flagIndexed, [[...indexed].map(bytes)]);
    await client.query(q.saveIndexedVars, [wanted]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  }
}
