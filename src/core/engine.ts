import { performance } from 'node:perf_hooks';
import { limitError, noSession, SessiondError, syntaxError } from '../errors.ts';
import {
  NO_SESSION,
  isInt64,
  type Awaitable,
  type SessionInit,
  type SessionRecord,
  type Store,
} from '../store/types.ts';
import { after } from './awaitable.ts';
import { systemClock, type Clock } from './clock.ts';
import { EventBus, type EventListener, type SessionEvent } from './events.ts';
import { Hooks, type HookContext } from './hooks.ts';
import { randomAlphanumeric, validateId } from './ids.ts';
import { resolveLimits, type Limits } from './limits.ts';
import { LockWaiters } from './lock-waiters.ts';
import { Plugins } from './plugins.ts';

export interface EngineOptions {
  store: Store;
  /** Where time comes from; tests pass a ManualClock. */
  clock?: Clock;
  limits?: Partial<Limits>;
  /** Idle timeout in seconds of sessions created without one (PHP's gc_maxlifetime is 1440). */
  defaultTimeout?: number;
  /** The class of sessions created without one. */
  defaultClass?: string;
  /** Length of ids the engine makes (REGENERATE, `newId`): 32 alphanumerics carry 190 bits. */
  idLength?: number;
  /** LOCK lease when none is given: msession's 30 seconds. */
  defaultLeaseMs?: number;
  /** Where errors of hooks and listeners go (they never reach the operation). */
  onError?: (error: unknown) => void;
}

/** Options of CREATE, UNIQ and SETDATA's implicit create. */
export interface CreateOptions {
  cls?: string;
  data?: string;
  /** Idle timeout in seconds; 0 never idle-expires. */
  timeout?: number;
}

/** The outcome of LOCK: a fencing key, or the time the holder's lease ends. */
export type LockResult =
  { acquired: true; key: number; until: number } | { acquired: false; heldUntil: number };

/** What CTL can ask (msession_ctl). */
export const CTL_QUERIES = ['EXIST', 'TTL', 'AGE', 'TLA', 'CTIME', 'TOUCH', 'NOW'] as const;
export type CtlQuery = (typeof CTL_QUERIES)[number];

/** A session as `load` returns it: the web layer's one round trip. */
export type Session = SessionRecord;

const SWEEP_BATCH = 1000;

/**
 * The one home of session semantics: ids, validation and limits, expiry, locks, hooks, events
 * and plugins. Every door (RESP and HTTP commands, the web layer, the CLI) goes through it.
 *
 * Strings are byte strings (one byte per code unit), as RESP delivers them.
 * Errors are SessiondError with the codes of PROTOCOL.md.
 */
export class Engine {
  readonly store: Store;
  readonly limits: Readonly<Limits>;
  readonly hooks: Hooks;
  readonly plugins = new Plugins();
  #clock: Clock;
  #events: EventBus;
  #waiters = new LockWaiters();
  #defaultTimeout: number;
  #defaultClass: string;
  #idLength: number;
  #defaultLeaseMs: number;
  #sweeper: NodeJS.Timeout | undefined;
  #onError: (error: unknown) => void;
  /** Listening on the store's event transport, when it has one; resolves to its unsubscribe. */
  #transport: Promise<(() => Promise<void>) | undefined>;
  #sweeping: Promise<number> | undefined;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.#clock = options.clock ?? systemClock;
    this.limits = Object.freeze(resolveLimits(options.limits));
    const onError = options.onError ?? ((error: unknown) => console.error('sessiond:', error));
    this.#onError = onError;
    this.hooks = new Hooks((error) => onError(error));
    this.#events = new EventBus(onError);
    // With a shared store, local listeners hear events from the transport, this server's own
    // included, so that every server's subscribers see each event exactly once.
    const bus = this.#events;
    this.#transport = this.store.events
      ? this.store.events
          .subscribe((event) => bus.emit(event))
          .catch((error: unknown) => {
            onError(error);
            return undefined;
          })
      : Promise.resolve(undefined);
    this.#defaultTimeout = this.#checkTimeout(options.defaultTimeout ?? 1800);
    this.#defaultClass = options.defaultClass ?? 'default';
    this.#idLength = options.idLength ?? 32;
    if (this.#idLength < 22 || this.#idLength > this.limits.maxIdBytes) {
      throw new RangeError('idLength must be 22..maxIdBytes (22 alphanumerics carry 128 bits)');
    }
    this.#defaultLeaseMs = options.defaultLeaseMs ?? 30_000;
  }

  /** Resolves once events from other servers sharing the store are being heard. */
  async ready(): Promise<void> {
    await this.#transport;
  }

  /** Milliseconds since the epoch, by the engine's clock. */
  now(): number {
    return this.#clock.now();
  }

  /** Calls `listener` for every session event; returns a function that stops it. */
  subscribe(listener: EventListener): () => void {
    return this.#events.subscribe(listener);
  }

  /**
   * Creates a session with a caller-given id (msession_create).
   * @returns false when a live session has that id.
   * @throws BADID, LIMIT, DENIED
   */
  async create(id: string, options: CreateOptions = {}): Promise<boolean> {
    validateId(id, this.limits.maxIdBytes);
    const init = this.#init(id, options);
    await this.#pre({ op: 'create', id });
    const created = await this.store.create(init, this.now());
    if (created) await this.#post({ op: 'create', id }, { type: 'created', id });
    return created;
  }

  /**
   * Creates a session under a new unguessable id of `length` alphanumerics (msession_uniq).
   * @throws ERR when length is outside 22..maxIdBytes; LIMIT, DENIED
   */
  async uniq(length: number, options: CreateOptions = {}): Promise<string> {
    if (!Number.isInteger(length) || length < 22 || length > this.limits.maxIdBytes) {
      throw syntaxError(`length must be 22..${this.limits.maxIdBytes} (at least 128 bits)`);
    }
    for (;;) {
      const id = randomAlphanumeric(length);
      if (await this.create(id, options)) return id;
    }
  }

  /** A new unguessable id of the configured length; creates nothing. */
  newId(): string {
    return randomAlphanumeric(this.#idLength);
  }

  /**
   * A random alphanumeric string of 1..4096 characters (msession_randstr); creates nothing.
   * @throws ERR when length is out of range
   */
  randstr(length: number): string {
    if (!Number.isInteger(length) || length < 1 || length > 4096)
      throw syntaxError('length must be 1..4096');
    return randomAlphanumeric(length);
  }

  /** Removes a session (msession_destroy). @returns false when none was live. @throws BADID, DENIED */
  async destroy(id: string): Promise<boolean> {
    validateId(id, this.limits.maxIdBytes);
    await this.#pre({ op: 'destroy', id });
    const destroyed = await this.store.destroy(id, this.now());
    if (destroyed) {
      this.#waiters.wake(id);
      await this.#post({ op: 'destroy', id }, { type: 'destroyed', id });
    }
    return destroyed;
  }

  /** Sets one variable (msession_set). @throws BADID, NOSESSION, LIMIT, DENIED */
  async set(id: string, name: string, value: string): Promise<void> {
    await this.setManyImmediate(id, [[name, value]]);
  }

  /** Sets several variables at once (msession_set_array). @throws BADID, NOSESSION, LIMIT, DENIED */
  async setMany(id: string, vars: ReadonlyArray<readonly [string, string]>): Promise<void> {
    await this.setManyImmediate(id, vars);
  }

  /**
   * One variable (msession_get), or `fallback` when it is unset.
   * @throws BADID, NOSESSION
   */
  async get(id: string, name: string, fallback: string | null = null): Promise<string | null> {
    return this.getImmediate(id, name, fallback);
  }

  /** All variables (msession_get_array), or null when there is no such session. @throws BADID */
  async getAll(id: string): Promise<Map<string, string> | null> {
    return (await this.loadImmediate(id))?.vars ?? null;
  }

  /**
   * The whole live session in one store round trip, recording the access; null if none.
   * The web layer's load.
   * @throws BADID
   */
  async load(id: string): Promise<Session | null> {
    return this.loadImmediate(id);
  }

  /** Removes variables; @returns how many existed. @throws BADID, NOSESSION, DENIED */
  async unset(id: string, names: readonly string[]): Promise<number> {
    validateId(id, this.limits.maxIdBytes);
    if (names.length === 0) throw syntaxError('no variables to unset');
    const context = this.hooks.has('update')
      ? ({ op: 'update', id, change: 'unset', names } as const)
      : undefined;
    if (context) await this.hooks.runPre(context);
    const removed = await this.store.unsetVars(id, names, this.now());
    this.#written(id, removed);
    if (removed > 0) await this.#updated(id, context);
    return removed;
  }

  /**
   * Adds `by` to an integer variable as one atomic step (msession_inc); absent counts as 0.
   * @returns the new value
   * @throws BADID, NOSESSION, NOTINT (not an integer, or the sum leaves signed 64 bits), LIMIT, DENIED
   */
  async inc(id: string, name: string, by: bigint | number = 1n): Promise<bigint> {
    return BigInt(await this.incImmediate(id, name, by));
  }

  /**
   * Sets the data blob (msession_set_data), creating the session when absent.
   * @returns true when it created the session
   * @throws BADID, LIMIT, DENIED
   */
  async setData(id: string, data: string, options: CreateOptions = {}): Promise<boolean> {
    validateId(id, this.limits.maxIdBytes);
    if (data.length > this.limits.maxDataBytes)
      throw limitError('data size (maxDataBytes)', this.limits.maxDataBytes);
    const init = this.#init(id, { ...options, data });
    const hooked = this.hooks.has('create') || this.hooks.has('update');
    // With hooks the veto must be asked before the write, so learn first which it will be.
    const exists = hooked
      ? (await this.store.get(id, this.now(), { touch: false, vars: false })) !== null
      : true;
    const context: HookContext = exists
      ? { op: 'update', id, change: 'data' }
      : { op: 'create', id };
    if (hooked) await this.hooks.runPre(context);
    const outcome = await this.store.setData(id, data, this.now(), init);
    if (outcome === 'readonly') this.#written(id, outcome);
    if (outcome === 'created') await this.#post({ op: 'create', id }, { type: 'created', id });
    else await this.#updated(id, hooked ? { op: 'update', id, change: 'data' } : undefined);
    return outcome === 'created';
  }

  /** The data blob ('' if never set) (msession_get_data). @throws BADID, NOSESSION */
  async getData(id: string): Promise<string> {
    return this.getDataImmediate(id);
  }

  /**
   * Ids of sessions whose variable `name` equals `value` (msession_find).
   * @throws LIMIT when more than maxResultIds match
   */
  async find(name: string, value: string): Promise<string[]> {
    const limit = this.limits.maxResultIds;
    return this.#capped('FIND', await this.store.find(name, value, this.now(), limit + 1));
  }

  /**
   * [id, value] for every session that has variable `name` (msession_listvar).
   * @throws LIMIT when more than maxResultIds have it
   */
  async listVar(name: string): Promise<Array<[string, string]>> {
    const limit = this.limits.maxResultIds;
    return this.#capped('LISTVAR', await this.store.listVar(name, this.now(), limit + 1));
  }

  /**
   * Every live session id, of one class if given (msession_list).
   * @throws LIMIT when there are more than maxResultIds; {@link scan} pages through any number
   */
  async list(cls?: string): Promise<string[]> {
    const limit = this.limits.maxResultIds + 1;
    const page = await this.store.list(this.now(), cls === undefined ? { limit } : { cls, limit });
    return this.#capped('LIST', page.ids, '; page through them with LIST CURSOR 0');
  }

  /**
   * One page of session ids; pass cursor "0" to start and stop when it comes back "0".
   * @throws ERR on an unknown cursor; LIMIT when count exceeds maxListCount
   */
  async scan(
    cursor: string,
    options: { count?: number; cls?: string } = {},
  ): Promise<{ cursor: string; ids: string[] }> {
    const count = options.count ?? Math.min(100, this.limits.maxListCount);
    if (!Number.isInteger(count) || count < 1)
      throw syntaxError('COUNT must be a positive integer');
    if (count > this.limits.maxListCount)
      throw limitError('page size (maxListCount)', this.limits.maxListCount);
    return this.store.list(this.now(), { ...options, cursor, count });
  }

  /** Live sessions, of one class if given (msession_count). */
  count(cls?: string): Promise<number> {
    return this.store.count(this.now(), cls);
  }

  /**
   * The idle timeout in seconds (msession_timeout); with `seconds`, sets it first
   * (0 never idle-expires; negative restores the default, as MCache did).
   * @throws BADID, NOSESSION, LIMIT, DENIED
   */
  async timeout(id: string, seconds?: number): Promise<number> {
    validateId(id, this.limits.maxIdBytes);
    if (seconds === undefined) return (await this.#meta(id)).timeout;
    const timeout = seconds < 0 ? this.#defaultTimeout : this.#checkTimeout(seconds);
    await this.#patch(id, 'timeout', { timeout }, true);
    return timeout;
  }

  /**
   * Takes the session's exclusive lock for `leaseMs` (default 30 s), waiting up to `waitMs`
   * (real time) for the holder (msession_lock). The key is a fencing token that increases per
   * session. msession's locks were advisory and never expired; these are leased and fenced.
   * @returns the key, or `acquired: false` when still held after the wait
   * @throws BADID, NOSESSION, LIMIT
   */
  async lock(id: string, options: { leaseMs?: number; waitMs?: number } = {}): Promise<LockResult> {
    validateId(id, this.limits.maxIdBytes);
    const leaseMs = options.leaseMs ?? this.#defaultLeaseMs;
    const waitMs = options.waitMs ?? 0;
    if (!Number.isInteger(leaseMs) || leaseMs < 1)
      throw syntaxError('LEASE must be a positive integer');
    if (leaseMs > this.limits.maxLeaseMs)
      throw limitError('lock lease (maxLeaseMs)', this.limits.maxLeaseMs);
    if (!Number.isInteger(waitMs) || waitMs < 0)
      throw syntaxError('WAIT must be a non-negative integer');
    if (waitMs > this.limits.maxLockWaitMs)
      throw limitError('lock wait (maxLockWaitMs)', this.limits.maxLockWaitMs);
    const giveUpAt = performance.now() + waitMs;
    for (;;) {
      const attempt = await this.store.lock(id, leaseMs, this.now());
      if (attempt === 'nosession') throw noSession(id);
      const left = giveUpAt - performance.now();
      if (attempt.acquired || left <= 0) return attempt;
      await this.#waiters.wait(id, Math.min(left, Math.max(1, attempt.heldUntil - this.now())));
    }
  }

  /** Releases the lock held with `key` (msession_unlock). @returns false when not held with it. @throws BADID */
  async unlock(id: string, key: number): Promise<boolean> {
    validateId(id, this.limits.maxIdBytes);
    const released = await this.store.unlock(id, key, this.now());
    if (released) this.#waiters.wake(id);
    return released;
  }

  /**
   * msession_ctl: EXIST (1/0), TTL (seconds left, -1 never), AGE, TLA (seconds since last
   * access), CTIME (creation, unix seconds), TOUCH (1/0), NOW (server time, unix seconds).
   * @throws BADID; NOSESSION for TTL, AGE, TLA and CTIME of a missing session
   */
  async ctl(id: string, query: CtlQuery): Promise<number> {
    const now = this.now();
    if (query === 'NOW') return Math.floor(now / 1000);
    validateId(id, this.limits.maxIdBytes);
    if (query === 'TOUCH') return (await this.touch(id)) ? 1 : 0;
    const session = await this.store.get(id, now, { touch: false, vars: false });
    if (query === 'EXIST') return session ? 1 : 0;
    if (!session) throw noSession(id);
    switch (query) {
      case 'TTL': {
        const idle = session.timeout > 0 ? session.touched + session.timeout * 1000 : Infinity;
        const deadline = Math.min(idle, session.expires > 0 ? session.expires : Infinity);
        return deadline === Infinity ? -1 : Math.ceil((deadline - now) / 1000);
      }
      case 'AGE':
        return Math.floor((now - session.created) / 1000);
      case 'TLA':
        return Math.floor((now - session.touched) / 1000);
      case 'CTIME':
        return Math.floor(session.created / 1000);
    }
  }

  /** Records an access now, extending idle expiry. @returns false when there is no such session. @throws BADID */
  async touch(id: string): Promise<boolean> {
    validateId(id, this.limits.maxIdBytes);
    return this.store.touch(id, this.now());
  }

  /**
   * Sets absolute expiry `seconds` from now (0 or less: now).
   * @returns false when there is no such session
   * @throws BADID, LIMIT, DENIED
   */
  async expire(id: string, seconds: number): Promise<boolean> {
    validateId(id, this.limits.maxIdBytes);
    if (!Number.isInteger(seconds)) throw new SessiondError('NOTINT', 'seconds is not an integer');
    if (seconds > this.limits.maxTimeoutSeconds)
      throw limitError('expiry (maxTimeoutSeconds)', this.limits.maxTimeoutSeconds);
    return this.#patch(id, 'expire', { expires: this.now() + Math.max(seconds, 0) * 1000 }, false);
  }

  /** Removes absolute expiry. @returns false when there is no such session. @throws BADID, DENIED */
  async persist(id: string): Promise<boolean> {
    validateId(id, this.limits.maxIdBytes);
    return this.#patch(id, 'persist', { expires: 0 }, false);
  }

  /**
   * Moves the session to a new unguessable id: call at login and privilege change (defends
   * against session fixation; eZ 3.9's regenerate was a no-op). With `graceSeconds` the old
   * id stays a read-only copy that long, so requests already in flight can finish.
   * @returns the new id
   * @throws BADID, NOSESSION, LIMIT, DENIED (also when the id is itself a read-only copy)
   */
  async regenerate(id: string, options: { graceSeconds?: number } = {}): Promise<string> {
    validateId(id, this.limits.maxIdBytes);
    const grace = options.graceSeconds ?? 0;
    if (!Number.isInteger(grace) || grace < 0)
      throw syntaxError('GRACE must be a non-negative integer');
    if (grace > this.limits.maxGraceSeconds)
      throw limitError('grace (maxGraceSeconds)', this.limits.maxGraceSeconds);
    await this.#pre({ op: 'regenerate', id });
    for (;;) {
      const newId = this.newId();
      const outcome = await this.store.regenerate(id, newId, grace * 1000, this.now());
      if (outcome === 'exists') continue;
      this.#written(id, outcome);
      await this.#post(
        { op: 'regenerate', id, newId },
        { type: 'regenerated', id: newId, oldId: id },
      );
      return newId;
    }
  }

  /** Sets the session's user (eZSessionSetUserID); null or '' clears it. @throws BADID, NOSESSION, LIMIT, DENIED */
  async setUser(id: string, user: string | null): Promise<void> {
    validateId(id, this.limits.maxIdBytes);
    if (user !== null && user.length > this.limits.maxUserBytes)
      throw limitError('user id (maxUserBytes)', this.limits.maxUserBytes);
    await this.#patch(id, 'user', { user: user === '' ? null : user }, true);
  }

  /** The session's user, or null (eZSessionUserID). @throws BADID, NOSESSION */
  async getUser(id: string): Promise<string | null> {
    validateId(id, this.limits.maxIdBytes);
    return (await this.#meta(id)).user;
  }

  /** Ids of the user's live sessions. @throws LIMIT when the user has more than maxResultIds */
  async userSessions(user: string): Promise<string[]> {
    const limit = this.limits.maxResultIds;
    return this.#capped('USERSESSIONS', await this.store.userSessions(user, this.now(), limit + 1));
  }

  /**
   * Ends the user's sessions but `except` ("log out other devices"), each through the destroy
   * hooks (eZ's removeSessionData skipped them).
   * @returns how many were destroyed
   */
  async destroyUser(user: string, except: string | null = null): Promise<number> {
    if (this.hooks.hasPre('destroy')) {
      let destroyed = 0;
      // Every one of them, however many: this ends sessions, it does not answer a list.
      for (const id of await this.store.userSessions(user, this.now())) {
        if (id === except) continue;
        const vetoed = await this.hooks.runPre({ op: 'destroy', id }).then(
          () => false,
          () => true,
        );
        if (!vetoed && (await this.store.destroy(id, this.now()))) {
          destroyed++;
          await this.#post({ op: 'destroy', id }, { type: 'destroyed', id });
        }
      }
      return destroyed;
    }
    const ids = await this.store.destroyUser(user, except, this.now());
    for (const id of ids) await this.#post({ op: 'destroy', id }, { type: 'destroyed', id });
    return ids.length;
  }

  /** Removes expired sessions now, in batches. @returns how many. @throws DENIED */
  async gc(): Promise<number> {
    await this.#pre({ op: 'gc' });
    const count = await this.#sweepAll();
    await this.#post({ op: 'gc', count }, { type: 'gc', count });
    return count;
  }

  /** Removes every session (eZSessionEmpty). @returns how many were live. @throws DENIED */
  async empty(): Promise<number> {
    await this.#pre({ op: 'empty' });
    const count = await this.store.empty(this.now());
    await this.#post({ op: 'empty', count }, { type: 'empty', count });
    return count;
  }

  /** Calls the loaded escape function (msession_plugin). @throws NOPLUGIN, ERR */
  plugin(id: string, val: string, param?: string): Promise<string> {
    return this.plugins.escape(id, val, param);
  }

  /** Calls a registered plugin function (msession_call). @throws NOPLUGIN, ERR */
  call(name: string, args: readonly string[] = []): Promise<string> {
    return this.plugins.call(name, args);
  }

  // The immediate forms: the same rules as get, setMany, inc, load and getData, for the command
  // table and the embedded web layer. Each answers with a value when the store answered at once
  // (the memory store always does) and with a promise otherwise; errors may be thrown at once.
  // Callers await the result either way.

  /** {@link get}, immediate. @throws BADID, NOSESSION */
  getImmediate(id: string, name: string, fallback: string | null = null): Awaitable<string | null> {
    validateId(id, this.limits.maxIdBytes);
    const value = this.store.getVar(id, name, this.now());
    // No closure on the synchronous path: this is the hottest read of the RESP port.
    if (value instanceof Promise) return value.then((v) => found(id, v, fallback));
    return found(id, value, fallback);
  }

  /** {@link setMany}, immediate. @throws BADID, NOSESSION, LIMIT, DENIED */
  setManyImmediate(id: string, vars: ReadonlyArray<readonly [string, string]>): Awaitable<void> {
    validateId(id, this.limits.maxIdBytes);
    if (vars.length === 0) throw syntaxError('no variables to set');
    for (let i = 0; i < vars.length; i++) {
      const pair = vars[i]!;
      this.#checkName(pair[0]);
      if (pair[1].length > this.limits.maxValueBytes)
        throw limitError('value size (maxValueBytes)', this.limits.maxValueBytes);
    }
    if (!this.hooks.has('update')) {
      // No hooks: no closure and no promise on the synchronous path (RESP's SET).
      const outcome = this.store.setVars(id, vars, this.now(), this.limits);
      if (outcome instanceof Promise) return outcome.then((o) => this.#setDone(id, o));
      return this.#setDone(id, outcome);
    }
    const context = { op: 'update', id, change: 'set', names: vars.map(([n]) => n) } as const;
    return this.hooks.runPre(context).then(async () => {
      this.#setDone(id, await this.store.setVars(id, vars, this.now(), this.limits));
      await this.hooks.runPost(context);
    });
  }

  /** SET's store outcome checked, the update announced; post hooks are the caller's. */
  #setDone(id: string, outcome: 'ok' | 'limit' | 'nosession' | 'readonly'): void {
    if (outcome === 'limit')
      throw limitError('variables per session (maxVars)', this.limits.maxVars);
    this.#written(id, outcome);
    this.#emit({ type: 'updated', id });
  }

  /**
   * {@link inc}, immediate; the new value may come as a number when it is a safe integer (the
   * memory store's counters skip BigInt).
   * @throws BADID, NOSESSION, NOTINT, LIMIT, DENIED
   */
  incImmediate(id: string, name: string, by: bigint | number = 1n): Awaitable<bigint | number> {
    validateId(id, this.limits.maxIdBytes);
    this.#checkName(name);
    const step = typeof by === 'bigint' ? by : Number.isSafeInteger(by) ? BigInt(by) : null;
    if (step === null || !isInt64(step))
      throw new SessiondError('NOTINT', 'increment is not a 64-bit integer');
    if (!this.hooks.has('update')) {
      // No hooks: no closure and no promise on the synchronous path (RESP's INC).
      const outcome = this.store.incVar(id, name, step, this.now(), this.limits);
      if (outcome instanceof Promise) return outcome.then((o) => this.#incremented(id, o));
      return this.#incremented(id, outcome);
    }
    const context = { op: 'update', id, change: 'inc', names: [name] } as const;
    return this.hooks.runPre(context).then(async () => {
      const outcome = this.#incremented(
        id,
        await this.store.incVar(id, name, step, this.now(), this.limits),
      );
      await this.hooks.runPost(context);
      return outcome;
    });
  }

  /** INC's store outcome as its reply, the update announced; post hooks are the caller's. */
  #incremented(
    id: string,
    outcome: bigint | number | 'notint' | 'limit' | 'nosession' | 'readonly',
  ): bigint | number {
    if (outcome === 'notint')
      throw new SessiondError('NOTINT', 'value is not an integer or would overflow');
    if (outcome === 'limit')
      throw limitError('variables per session (maxVars)', this.limits.maxVars);
    this.#written(id, outcome);
    this.#emit({ type: 'updated', id });
    return outcome;
  }

  /** {@link load}, immediate. @throws BADID */
  loadImmediate(id: string): Awaitable<Session | null> {
    validateId(id, this.limits.maxIdBytes);
    return this.store.get(id, this.now(), { touch: true, vars: true });
  }

  /** {@link getData}, immediate. @throws BADID, NOSESSION */
  getDataImmediate(id: string): Awaitable<string> {
    validateId(id, this.limits.maxIdBytes);
    return after(this.store.get(id, this.now(), { touch: true, vars: false }), (session) => {
      if (!session) throw noSession(id);
      return session.data;
    });
  }

  /**
   * Sweeps expired sessions every `intervalMs` in bounded batches, yielding to the event loop
   * between batches so that a large expiry never stalls other clients.
   */
  startSweeper(intervalMs = 1000): void {
    this.stopSweeper();
    const tick = async () => {
      if (this.store.tryLeadSweep && !(await this.store.tryLeadSweep())) return;
      await this.#sweepAll();
    };
    this.#sweeper = setInterval(() => void tick().catch(this.#onError), intervalMs);
    this.#sweeper.unref();
  }

  stopSweeper(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  /** Stops the sweeper and closes the store. */
  async close(): Promise<void> {
    this.stopSweeper();
    await this.#sweeping;
    const unsubscribe = await this.#transport;
    await unsubscribe?.().catch(this.#onError);
    await this.store.close();
  }

  /** One sweep at a time; a caller that arrives during one waits for it and then runs its own. */
  async #sweepAll(): Promise<number> {
    while (this.#sweeping) await this.#sweeping;
    this.#sweeping = (async () => {
      let total = 0;
      for (;;) {
        const expired = await this.store.sweep(this.now(), SWEEP_BATCH);
        total += expired.length;
        for (const { id } of expired) this.#emit({ type: 'expired', id });
        if (expired.length < SWEEP_BATCH) return total;
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    try {
      return await this.#sweeping;
    } finally {
      this.#sweeping = undefined;
    }
  }

  #init(id: string, options: CreateOptions): SessionInit {
    const cls = options.cls ?? this.#defaultClass;
    const data = options.data ?? '';
    if (cls.length > this.limits.maxClassBytes)
      throw limitError('class name (maxClassBytes)', this.limits.maxClassBytes);
    if (data.length > this.limits.maxDataBytes)
      throw limitError('data size (maxDataBytes)', this.limits.maxDataBytes);
    const timeout =
      options.timeout === undefined ? this.#defaultTimeout : this.#checkTimeout(options.timeout);
    return { id, cls, data, user: null, timeout, expires: 0, vars: new Map() };
  }

  #checkTimeout(seconds: number): number {
    if (!Number.isInteger(seconds) || seconds < 0)
      throw new SessiondError('NOTINT', 'timeout must be a non-negative integer');
    if (seconds > this.limits.maxTimeoutSeconds)
      throw limitError('timeout (maxTimeoutSeconds)', this.limits.maxTimeoutSeconds);
    return seconds;
  }

  /**
   * A whole-result reply, refused when the store found more than maxResultIds (it was asked for
   * one more): such a reply would hold the event loop, and every other client, while it is built.
   */
  #capped<T>(command: string, results: T[], hint = ''): T[] {
    const max = this.limits.maxResultIds;
    if (results.length <= max) return results;
    throw new SessiondError('LIMIT', `${command} result (maxResultIds) exceeds ${max} ids${hint}`);
  }

  #checkName(name: string): void {
    if (name.length > this.limits.maxNameBytes)
      throw limitError('variable name (maxNameBytes)', this.limits.maxNameBytes);
  }

  async #meta(id: string): Promise<SessionRecord> {
    const session = await this.store.get(id, this.now(), { touch: false, vars: false });
    if (!session) throw noSession(id);
    return session;
  }

  /** Applies a metadata change; a missing session throws NOSESSION when `strict`, else gives false. */
  async #patch(
    id: string,
    change: string,
    patch: Parameters<Store['update']>[1],
    strict: boolean,
  ): Promise<boolean> {
    const context = this.hooks.has('update') ? { op: 'update' as const, id, change } : undefined;
    if (context) await this.hooks.runPre(context);
    const outcome = await this.store.update(id, patch, this.now());
    if (outcome === 'nosession' && !strict) return false;
    this.#written(id, outcome);
    await this.#updated(id, context);
    return true;
  }

  /** Turns a store's refusal into the protocol's error. */
  #written<T>(id: string, outcome: T | 'nosession' | 'readonly'): asserts outcome is T {
    if (outcome === 'nosession') throw noSession(id);
    if (outcome === 'readonly')
      throw new SessiondError('DENIED', 'session is a read-only copy left by REGENERATE');
  }

  async #pre(context: HookContext): Promise<void> {
    if (this.hooks.hasPre(context.op)) await this.hooks.runPre(context);
  }

  /** Announces an event: on the shared transport when the store has one, else locally. */
  #emit(event: SessionEvent): void {
    const transport = this.store.events;
    if (transport) transport.publish(event).catch(this.#onError);
    else this.#events.emit(event);
  }

  /** Announces the event, then runs the post hooks; a promise only when there are hooks to run. */
  #post(context: HookContext, event: SessionEvent): Awaitable<void> {
    this.#emit(event);
    return this.hooks.has(context.op) ? this.hooks.runPost(context) : undefined;
  }

  #updated(id: string, context: HookContext | undefined): Awaitable<void> {
    this.#emit({ type: 'updated', id });
    const hooked =
      context ?? (this.hooks.has('update') ? { op: 'update' as const, id } : undefined);
    return hooked ? this.hooks.runPost(hooked) : undefined;
  }
}

/** GET's answer from the store's: the value, else the fallback. @throws NOSESSION */
function found(
  id: string,
  value: string | undefined | typeof NO_SESSION,
  fallback: string | null,
): string | null {
  if (value === NO_SESSION) throw noSession(id);
  return value ?? fallback;
}
