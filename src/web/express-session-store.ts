import session from 'express-session';
import type { SessionBackend } from './backend.ts';
import { chooseBackend, type SessionOptions } from './options.ts';

/** Options of SessiondStore. Exactly one of `engine`, `client` or `backend` is required. */
export interface SessiondStoreOptions extends Pick<
  SessionOptions,
  'engine' | 'client' | 'backend'
> {
  /** The class of the store's sessions: all(), length(), clear() and ids() see only these. */
  className?: string;
  /** Idle timeout in seconds when the cookie has no maxAge; default 86400 (connect-redis's). */
  ttl?: number;
}

type Callback<T = void> = (error?: unknown, value?: T) => void;
type Data = session.SessionData;

/**
 * A store for express-session that keeps its sessions in sessiond, so an express-session app
 * keeps its code: `session({ store: new SessiondStore({ engine }), secret })`. Each session is
 * one sessiond session of class `className`, its express-session JSON in the data blob, its
 * idle timeout the cookie's maxAge. Every access extends it (sessiond's sliding expiry).
 *
 * Errors reach express-session's callbacks: BADID, LIMIT, DENIED, and ClientError in remote mode.
 *
 * @example
 * app.use(session({ store: new SessiondStore({ client }), secret: process.env.SECRET!, resave: false }));
 */
export class SessiondStore extends session.Store {
  #backend: SessionBackend;
  #cls: string;
  #ttl: number;

  /** @throws TypeError when not exactly one backend is given; RangeError for a bad ttl */
  constructor(options: SessiondStoreOptions) {
    super();
    this.#backend = chooseBackend(options);
    this.#cls = options.className ?? 'express-session';
    this.#ttl = options.ttl ?? 86_400;
    if (!Number.isSafeInteger(this.#ttl) || this.#ttl <= 0) {
      throw new RangeError('ttl must be a positive integer (seconds)');
    }
  }

  /**
   * The session, or null when there is none or it is not express-session's. In embedded mode a
   * session of another class is refused too; the wire protocol cannot tell the class, but
   * express-session only asks for ids its secret signed.
   */
  override get(sid: string, callback: Callback<Data | null>): void {
    settle(this.#read(sid), callback);
  }

  /** Stores the session, creating it when absent; its timeout follows the cookie's maxAge. */
  override set(sid: string, data: Data, callback?: Callback): void {
    settle(this.#write(sid, data), callback);
  }

  override destroy(sid: string, callback?: Callback): void {
    settle(this.#backend.destroy(sid).then(nothing), callback);
  }

  /** Records an access (resave: false calls it for unchanged sessions). */
  override touch(sid: string, _data: Data, callback?: Callback): void {
    settle(this.#backend.touch(sid).then(nothing), callback);
  }

  /** Every session of this store, by id. Reading them records an access to each. */
  override all(callback: Callback<Record<string, Data>>): void {
    settle(this.#all(), callback);
  }

  /** How many sessions this store has. */
  override length(callback: Callback<number>): void {
    settle(this.#backend.count(this.#cls), callback);
  }

  /** Removes this store's sessions, and no other class's. */
  override clear(callback?: Callback): void {
    settle(this.#clear(), callback);
  }

  /** The ids of this store's sessions (connect-redis's ids()). */
  ids(callback: Callback<string[]>): void {
    settle(this.#backend.list(this.#cls), callback);
  }

  async #read(sid: string): Promise<Data | null> {
    const stored = await this.#backend.load(sid);
    if (!stored || (stored.cls !== undefined && stored.cls !== this.#cls)) return null;
    try {
      // JSON.parse, never eval: the stored text cannot run code (PHPLib's thaw could).
      const data: unknown = JSON.parse(stored.data);
      return typeof data === 'object' && data !== null ? (data as Data) : null;
    } catch {
      // Not express-session's JSON: a session some other client made under this id.
      return null;
    }
  }

  async #write(sid: string, data: Data): Promise<void> {
    const json = JSON.stringify(data);
    const timeout = this.#timeoutOf(data);
    const backend = this.#backend;
    const init = { cls: this.#cls, timeout, lifetime: 0, data: json };
    // express-session's set is an upsert: create-if-absent and update travel together (one
    // pipeline in remote mode); whichever finds the session, the outcome is the same.
    for (let attempt = 0; attempt < 3; attempt++) {
      const [created, outcome] = await Promise.all([
        backend.create(sid, init),
        backend.write(sid, { data: json, timeout }),
      ]);
      if (created || outcome === 'ok') return;
    }
    throw new Error('express-session store: the session kept vanishing during set()');
  }

  async #all(): Promise<Record<string, Data>> {
    const ids = await this.#backend.list(this.#cls);
    const sessions = await Promise.all(ids.map((sid) => this.#read(sid)));
    const out: Record<string, Data> = Object.create(null) as Record<string, Data>;
    ids.forEach((sid, i) => {
      const data = sessions[i];
      if (data) out[sid] = data;
    });
    return out;
  }

  /** A page at a time, so any number of sessions is cleared (all() and ids() stop at LIMIT). */
  async #clear(): Promise<void> {
    for await (const ids of this.#backend.pages(this.#cls)) {
      await Promise.all(ids.map((sid) => this.#backend.destroy(sid)));
    }
  }

  /** The cookie's remaining lifetime in seconds, else the store's ttl. */
  #timeoutOf(data: Data): number {
    const maxAge = data.cookie?.maxAge;
    return typeof maxAge === 'number' && maxAge > 0 ? Math.ceil(maxAge / 1000) : this.#ttl;
  }
}

const nothing = (): void => undefined;

function settle<T>(work: Promise<T>, callback: Callback<T> | undefined): void {
  work.then(
    (value) => callback?.(null, value),
    (error: unknown) => callback?.(error),
  );
}
