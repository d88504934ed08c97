import { isSessiondError, SessiondError } from '../errors.ts';
import type { SessionBackend, StoredSession } from './backend.ts';
import type { Awaitable } from '../store/types.ts';
import { readArrival, rejectId, type Arrival } from './carriers.ts';
import {
  oneOf,
  resolveOptions,
  type Concurrency,
  type ResolvedOptions,
  type SessionOptions,
} from './options.ts';
import { headerValue, isSecure, pathAndQuery, type RequestLike } from './request.ts';
import { Session } from './session.ts';
import { SessionTransaction } from './transaction.ts';
import type { UrlContext } from './url-helpers.ts';

/** What `begin` found under the request's id. */
interface Found {
  loaded: StoredSession | null;
  lockKey: number | null;
}

const NOT_FOUND: Found = { loaded: null, lockKey: null };

/** Per-request choices that override the manager's options. */
export interface BeginOptions {
  concurrency?: Concurrency;
}

/**
 * The framework-agnostic core of the web layer: finds the request's session, loads it in one
 * round trip, and hands the adapter a transaction to commit before the response goes out.
 * Embedded (`{ engine }`) or remote (`{ client }`) is one option; everything else is the same.
 *
 * @example
 * const sessions = createSessions({ engine, keys: [process.env.SESSION_KEY!] });
 * const tx = await sessions.begin({ url: req.url!, headers: req.headers });
 */
export class SessionManager {
  readonly options: Readonly<ResolvedOptions>;
  #ownOrigins: ReadonlySet<string>;
  #sweeper: NodeJS.Timeout | undefined;
  #collecting: Promise<unknown> | undefined;

  /** @throws TypeError, RangeError for a bad option */
  constructor(options: SessionOptions) {
    this.options = Object.freeze(resolveOptions(options));
    const own = new Set<string>();
    if (this.options.baseOrigin !== null) own.add(this.options.baseOrigin);
    for (const host of this.options.allowedHosts) own.add(`http://${host}`).add(`https://${host}`);
    this.#ownOrigins = own;
    const { gc } = this.options;
    if (gc && 'intervalMs' in gc) {
      this.#sweeper = setInterval(() => this.#collect(), gc.intervalMs);
      this.#sweeper.unref();
    }
  }

  /** The backend sessions go through. */
  get backend(): SessionBackend {
    return this.options.backend;
  }

  /**
   * Finds the request's session and loads it: one store round trip (two in 'lock' mode: LOCK,
   * then the load). An unknown id is never adopted in strict mode; the visitor gets a new
   * session only when something is first written.
   * @throws SessiondError LOCKED when another request holds the lock past `lock.waitMs`;
   * ClientError in remote mode when the server cannot be reached
   */
  async begin(request: RequestLike, overrides: BeginOptions = {}): Promise<SessionTransaction> {
    return this.beginImmediate(request, overrides);
  }

  /**
   * {@link begin}, answering at once when the backend loads at once (an engine over the memory
   * store): the adapters then run the handler without a promise hop. Errors may be thrown at
   * once.
   */
  beginImmediate(
    request: RequestLike,
    overrides: BeginOptions = {},
  ): Awaitable<SessionTransaction> {
    const options = this.options;
    const concurrency =
      overrides.concurrency === undefined
        ? options.concurrency
        : oneOf('concurrency', overrides.concurrency, ['none', 'lock', 'readonly']);
    const arrival = readArrival(request, options);
    const id = arrival.id;
    const begun = (id: string | null, found: Found) =>
      this.#begun(request, concurrency, arrival, id, found);
    if (id === null) return begun(null, NOT_FOUND);
    let found: Awaitable<Found>;
    try {
      found = concurrency === 'lock' ? this.#find(id) : this.#load(id);
    } catch (error) {
      return begun(this.#refused(error), NOT_FOUND);
    }
    if (!(found instanceof Promise)) return begun(id, found);
    return found.then(
      (found) => begun(id, found),
      (error: unknown) => begun(this.#refused(error), NOT_FOUND),
    );
  }

  /** The transaction of a request whose id (or none) and stored session are known. */
  #begun(
    request: RequestLike,
    concurrency: Concurrency,
    arrival: Arrival,
    id: string | null,
    found: Found,
  ): SessionTransaction {
    const options = this.options;
    // Strict mode: an id the store does not know is never adopted (defends against fixation).
    if (id !== null && found.loaded === null && options.strict) id = rejectId(options, 'unknown');
    const session = new Session({
      options,
      id,
      loaded: found.loaded,
      readonly: concurrency === 'readonly',
      urls: this.#urlContext(request, arrival.propagate),
    });
    return new SessionTransaction({
      session,
      request,
      options,
      arrival,
      lockKey: found.lockKey,
      onEnd: () => this.#draw(),
    });
  }

  /**
   * An id the backend refuses (longer than its maxIdBytes) is as malformed as any other: defends
   * against a cookie the store cannot take turning every page into a 500. Other errors throw.
   */
  #refused(error: unknown): null {
    if (!isSessiondError(error, 'BADID')) throw error;
    return rejectId(this.options, 'malformed');
  }

  /** Live sessions of this manager's class (eZSessionCountActive, without the expired rows). */
  count(): Promise<number> {
    return this.options.backend.count(this.options.className);
  }

  /** Removes expired sessions now (PHPLib's ac_gc, eZ's garbage collector). @throws DENIED */
  gc(): Promise<number> {
    return this.options.backend.gc();
  }

  /**
   * Removes every session of every class (eZSessionEmpty), with the engine's empty hooks.
   * On a server shared by several applications that is all of theirs too.
   * @throws DENIED (remote mode needs the admin right)
   */
  empty(): Promise<number> {
    return this.options.backend.empty();
  }

  /** Ids of the user's live sessions. */
  userSessions(user: string): Promise<string[]> {
    return this.options.backend.userSessions(user);
  }

  /** Ends every session of the user, e.g. after a password change; how many. */
  destroyUser(user: string): Promise<number> {
    return this.options.backend.destroyUser(user, null);
  }

  /** Stops the gc interval and waits for a collection in progress. Closes no engine or client. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.#collecting;
  }

  /** Loads without a lock, at once when the backend can. */
  #load(id: string): Awaitable<Found> {
    const { backend } = this.options;
    const loaded = backend.loadImmediate ? backend.loadImmediate(id) : backend.load(id);
    if (loaded instanceof Promise)
      return loaded.then((l) => ({ loaded: this.#ours(l), lockKey: null }));
    return { loaded: this.#ours(loaded), lockKey: null };
  }

  /** Locks, then loads ('lock' mode); the lock is kept only while a session of ours is loaded. */
  async #find(id: string): Promise<Found> {
    const { backend, onError } = this.options;
    // Lock before loading, so what is read is what no other request is changing.
    const lockKey = await this.#lock(id);
    if (lockKey === 'gone') return NOT_FOUND;
    let loaded: StoredSession | null = null;
    try {
      loaded = this.#ours(await backend.load(id));
    } finally {
      // Nothing to hold the lock for (no session, or the load failed): release it at once.
      if (loaded === null) await backend.unlock(id, lockKey).catch(onError);
    }
    return { loaded, lockKey: loaded === null ? null : lockKey };
  }

  /** Another application's session on a shared server is not ours to use. */
  #ours(loaded: StoredSession | null): StoredSession | null {
    return loaded?.cls !== undefined && loaded.cls !== this.options.className ? null : loaded;
  }

  async #lock(id: string): Promise<number | 'gone'> {
    const { backend, leaseMs, waitMs } = this.options;
    const outcome = await backend.lock(id, leaseMs, waitMs);
    if (outcome === 'locked') {
      throw new SessiondError('LOCKED', `session still locked after ${waitMs} ms`);
    }
    return outcome;
  }

  /** PHPLib's gc_probability: each finished request collects with this chance. */
  #draw(): void {
    const { gc, random } = this.options;
    if (gc && 'probability' in gc && random() < gc.probability) this.#collect();
  }

  #collect(): void {
    // One collection at a time: a busy site must not start one per request.
    this.#collecting ??= this.options.backend
      .gc()
      .catch(this.options.onError)
      .finally(() => (this.#collecting = undefined));
  }

  #urlContext(request: RequestLike, propagate: boolean): UrlContext {
    const { baseOrigin, allowedHosts, name } = this.options;
    let origin = baseOrigin;
    const host = (
      headerValue(request, 'host') ?? headerValue(request, ':authority')
    )?.toLowerCase();
    // Only a Host on the allow list makes an absolute URL (defends against Host header poisoning).
    if (origin === null && host !== undefined && allowedHosts.has(host)) {
      origin = `${isSecure(request, this.options) ? 'https' : 'http'}://${host}`;
    }
    return { name, propagate, self: pathAndQuery(request), origin, ownOrigins: this.#ownOrigins };
  }
}

/**
 * The web layer's sessions, embedded (`{ engine }`) or remote (`{ client }`).
 * @throws TypeError, RangeError for a bad option
 * @example
 * const sessions = createSessions({ client: await SessiondClient.connect({ port: 8086 }) });
 */
export function createSessions(options: SessionOptions): SessionManager {
  return new SessionManager(options);
}
