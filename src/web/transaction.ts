import type { Awaitable } from '../store/types.ts';
import type { Arrival } from './carriers.ts';
import { sendToken } from './carriers.ts';
import type { ResolvedOptions } from './options.ts';
import type { HeaderSink, RequestLike } from './request.ts';
import type { Session } from './session.ts';

/** What #release answers when there is no lock to give back: one settled promise for all. */
const RELEASED: Promise<void> = Promise.resolve();
const ignore = (): void => undefined;

/** What a transaction is told by the manager that began it. */
export interface TransactionSetup {
  session: Session;
  request: RequestLike;
  options: ResolvedOptions;
  arrival: Arrival;
  /** The lock key, in 'lock' mode when the session existed. */
  lockKey: number | null;
  /** Called once when the request is over (the gc draw). */
  onEnd: () => void;
}

/**
 * One request's use of a session, from `SessionManager.begin()` to the response. An adapter
 * calls `save(sink)` before the response headers go out, then `end()`; or `commit(sink)` for
 * both; or `abandon()` when the request failed before responding.
 *
 * @example
 * const tx = await sessions.begin(request);
 * try { await handle(tx.session) } catch (e) { await tx.abandon(); throw e }
 * await tx.commit(sink);
 */
export class SessionTransaction {
  readonly session: Session;
  #request: RequestLike;
  #options: ResolvedOptions;
  #arrival: Arrival;
  #lockId: string | null;
  #lockKey: number | null;
  #onEnd: () => void;
  #headersDone = false;
  #ending: Promise<void> | undefined;

  constructor(setup: TransactionSetup) {
    this.session = setup.session;
    this.#request = setup.request;
    this.#options = setup.options;
    this.#arrival = setup.arrival;
    this.#lockKey = setup.lockKey;
    this.#lockId = setup.lockKey === null ? null : setup.session.id;
    this.#onEnd = setup.onEnd;
  }

  /**
   * Writes the session's changes, then (once, and only with a sink) sets the response headers:
   * the cookie or id header when the id is new, changed or gone, and the cache policy. Before
   * those headers it renews an id older than `renewAfter`.
   * @throws what Session.save() throws; no header is set then
   */
  async save(sink?: HeaderSink): Promise<void> {
    return this.saveImmediate(sink);
  }

  /**
   * {@link save}, answering at once when the session saves at once (an engine over the memory
   * store): the held response then goes out with no promise hop. May throw at once.
   */
  saveImmediate(sink?: HeaderSink): Awaitable<void> {
    // Only before the headers: a renewed id must reach the client in this response.
    if (sink && !this.#headersDone && this.#options.renewAfter > 0) return this.#renewAndSave(sink);
    const saved = this.session.saveImmediate();
    if (saved instanceof Promise) return saved.then(() => this.#headers(sink));
    this.#headers(sink);
  }

  async #renewAndSave(sink: HeaderSink): Promise<void> {
    await this.session.renewIfDue();
    await this.session.save();
    this.#headers(sink);
  }

  /** Sets the response headers, once, when there is a sink to set them on. */
  #headers(sink: HeaderSink | undefined): void {
    if (sink && !this.#headersDone) {
      this.#headersDone = true;
      this.#setHeaders(sink);
    }
  }

  /**
   * Ends the request: writes what changed since `save` (e.g. while a body streamed), then
   * releases the lock, even when the write fails. Calling it again returns the same promise.
   * @throws what Session.save() throws
   */
  end(): Promise<void> {
    this.#ending ??= this.session.save().then(
      () => this.#release(),
      // Released on failure too, and the failure still reaches the caller.
      (error: unknown) =>
        this.#release().then(() => {
          throw error;
        }),
    );
    return this.#ending;
  }

  /**
   * {@link end}, answering at once when nothing changed since `save` and no lock is held (the
   * common case): no chain of promises for a request that is done.
   */
  endImmediate(): Awaitable<void> {
    let unsaved: boolean;
    try {
      unsaved = this.session.unsaved;
    } catch {
      // A value with no JSON form: end() reports it through its save, and releases the lock.
      unsaved = true;
    }
    if (this.#ending !== undefined || unsaved) return this.end();
    this.#ending = this.#release();
    return this.#ending === RELEASED ? undefined : this.#ending;
  }

  /** `save(sink)` then `end()`; when the save fails, the lock is still released. */
  async commit(sink: HeaderSink): Promise<void> {
    return this.commitImmediate(sink);
  }

  /** {@link commit}, answering at once when the save and the end do. May throw at once. */
  commitImmediate(sink: HeaderSink): Awaitable<void> {
    let saved: Awaitable<void>;
    try {
      saved = this.saveImmediate(sink);
    } catch (error) {
      return this.#abandonWith(error);
    }
    if (!(saved instanceof Promise)) return this.endImmediate();
    return saved.then(
      () => this.endImmediate(),
      (error: unknown) => this.#abandonWith(error),
    );
  }

  /** Releases the lock after a failed save; the failure still reaches the caller. */
  async #abandonWith(error: unknown): Promise<never> {
    await this.abandon();
    throw error;
  }

  /** Ends the request without writing anything more: for requests that failed. */
  abandon(): Promise<void> {
    this.#ending ??= this.#release();
    return this.#ending;
  }

  #release(): Promise<void> {
    const key = this.#lockKey;
    this.#lockKey = null;
    if (key === null) {
      this.#onEnd();
      return RELEASED;
    }
    // The lock moved with a regenerated id; a deleted session took its lock with it.
    const id = this.session.id ?? this.#lockId!;
    return this.#options.backend
      .unlock(id, key)
      .then(ignore, this.#options.onError)
      .then(() => this.#onEnd());
  }

  #setHeaders(sink: HeaderSink): void {
    const { session } = this;
    const options = this.#options;
    const arrival = this.#arrival;
    let sentCookie = false;
    if (session.stored && session.id !== null) {
      const cookies = options.carrier === 'cookie' || options.carrier === 'cookie-or-query';
      const changed = session.id !== arrival.id;
      // PHPLib re-sent a cookie with a lifetime on every page, so it slides like the session.
      const rolling = cookies && options.cookie.maxAge > 0;
      // No cookie came back: offer it again, the browser may keep it this time (PHPLib fallback).
      const offer = options.carrier === 'cookie-or-query' && !arrival.cookieSent;
      if (changed || rolling || offer) {
        sendToken(sink, options.signer.sign(session.id), this.#request, options);
        sentCookie = cookies;
      }
    } else if (arrival.tokenSent) {
      // A stale, tampered, deleted or vanished id: the client forgets it and stops sending it.
      sendToken(sink, null, this.#request, options);
      sentCookie = options.carrier !== 'header' && options.carrier !== 'query';
    }
    this.#setCacheHeaders(sink, sentCookie);
    if (arrival.via === 'query' && sink.get('referrer-policy') === undefined) {
      // The id is in this page's URL: defends against it leaking to other sites in Referer.
      sink.set('referrer-policy', 'same-origin');
    }
  }

  #setCacheHeaders(sink: HeaderSink, sentCookie: boolean): void {
    const { cache, cacheMaxAge, carrier, header } = this.#options;
    // As PHPLib's put_headers: the policy applies unless the application chose for itself.
    if (cache !== 'passive' && sink.get('cache-control') === undefined) {
      sink.set('cache-control', cache === 'no' ? 'no-store' : `${cache}, max-age=${cacheMaxAge}`);
    }
    if ((cache === 'private' || cache === 'public') && carrier !== 'query') {
      // The response depends on who asks: caches must key on the id's carrier.
      sink.append('vary', carrier === 'header' ? header : 'cookie');
    }
    const control = sink.get('cache-control');
    if (sentCookie && control !== undefined && /\b(public|s-maxage)\b/i.test(control)) {
      // Defends against a shared cache storing this Set-Cookie and handing it to other visitors.
      sink.set('cache-control', 'private, no-store');
    }
  }
}
