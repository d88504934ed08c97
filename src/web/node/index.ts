/**
 * sessiond/web/node: sessions for node:http handlers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isSessiondError } from '../../errors.ts';
import type { Awaitable } from '../../store/types.ts';
import type { BeginOptions, SessionManager } from '../manager.ts';
import type { HeaderSink, RequestLike } from '../request.ts';
import type { Session } from '../session.ts';
import type { SessionTransaction } from '../transaction.ts';
import { holdResponse, type HeldResponse, type HoldHooks } from './hold-response.ts';

export { holdResponse, type HoldHooks } from './hold-response.ts';

/**
 * Where a request keeps its session, beside `req.session` (which other middleware may replace).
 * A private symbol rather than a WeakMap, whose set() and the GC of its entries cost about 1 µs
 * a request in Node 24.
 */
const SESSION = Symbol('sessiond.session');

/** A request as this module tags it. */
type Tagged = { [SESSION]?: Session };

/**
 * The session `attach` (or the Express middleware) gave this request.
 * @throws Error when none was attached: the middleware is missing on this route
 * @example
 * const session = sessionOf(req); session.set('theme', 'dark');
 */
export function sessionOf(req: object): Session {
  const session = (req as Tagged)[SESSION];
  if (!session)
    throw new Error('no session on this request: is the sessiond middleware installed?');
  return session;
}

/** What the web layer reads of a node:http request. */
export function requestOf(req: IncomingMessage, url = req.url ?? '/'): RequestLike {
  const request: RequestLike = {
    url,
    headers: req.headers,
    encrypted: (req.socket as Partial<TLSSocket>).encrypted === true,
  };
  const address = req.socket.remoteAddress;
  if (address !== undefined) request.remoteAddress = address;
  const body: unknown = (req as { body?: unknown }).body;
  if (body !== undefined) request.body = body;
  return request;
}

/** A HeaderSink over a node:http response. */
export function headerSink(res: ServerResponse): HeaderSink {
  return {
    get(name) {
      const value = res.getHeader(name);
      if (value === undefined) return undefined;
      return Array.isArray(value) ? value.join(', ') : String(value);
    },
    set: (name, value) => void res.setHeader(name, value),
    append: (name, value) => void res.appendHeader(name, value),
  };
}

/** A request's session and how to drop its changes. */
interface Attached {
  session: Session;
  /** Writes nothing more for this request; the lock is released when the response ends. */
  discard(): void;
  /** Whether the handler has ended the response (which may still be held). */
  readonly ended: boolean;
}

/**
 * Loads the request's session, sets `req.session`, and holds the response until the session is
 * saved: nothing of the response (status, headers, body) leaves before the write completes.
 * @returns the session
 * @throws SessiondError LOCKED ('lock' mode, still held after the wait); ClientError (remote)
 * @example
 * http.createServer(async (req, res) => {
 *   const session = await attach(sessions, req, res);
 *   session.set('visits', ((session.get('visits') as number) ?? 0) + 1);
 *   res.end('hello');
 * });
 */
export async function attach(
  sessions: SessionManager,
  req: IncomingMessage,
  res: ServerResponse,
  options: BeginOptions & { url?: string } = {},
): Promise<Session> {
  return (await attachHeld(sessions, req, res, options)).session;
}

/** `attach`, also answering how to drop the request's changes: shared with the Express adapter. */
export async function attachHeld(
  sessions: SessionManager,
  req: IncomingMessage,
  res: ServerResponse,
  options: BeginOptions & { url?: string } = {},
): Promise<Attached> {
  return attachHeldImmediate(sessions, req, res, options);
}

/**
 * {@link attachHeld}, answering at once when the session loads at once (an engine over the
 * memory store), so the Express adapter calls next() with no promise hop. May throw at once.
 */
export function attachHeldImmediate(
  sessions: SessionManager,
  req: IncomingMessage,
  res: ServerResponse,
  options: BeginOptions & { url?: string } = {},
): Awaitable<Attached> {
  if ((req as Tagged)[SESSION]) throw new Error('a session is already attached to this request');
  const tx = sessions.beginImmediate(requestOf(req, options.url), options);
  if (tx instanceof Promise) return tx.then((tx) => held(sessions, req, res, tx));
  return held(sessions, req, res, tx);
}

function held(
  sessions: SessionManager,
  req: IncomingMessage,
  res: ServerResponse,
  tx: SessionTransaction,
): Attached {
  (req as Tagged)[SESSION] = tx.session;
  (req as { session?: Session }).session = tx.session;
  return new HeldSession(sessions, tx, res);
}

/**
 * A request's session whose response is held until it is saved; it is the hold's hooks too. A
 * class, not an object literal with a getter, which V8 builds by a slow path (about 2 µs).
 */
class HeldSession implements Attached, HoldHooks {
  readonly session: Session;
  #sessions: SessionManager;
  #tx: SessionTransaction;
  #res: ServerResponse;
  #held: HeldResponse;
  #discarded = false;

  constructor(sessions: SessionManager, tx: SessionTransaction, res: ServerResponse) {
    this.session = tx.session;
    this.#sessions = sessions;
    this.#tx = tx;
    this.#res = res;
    this.#held = holdResponse(res, this);
  }

  get ended(): boolean {
    return this.#held.ended;
  }

  discard(): void {
    this.#discarded = true;
  }

  beforeHeaders(): Awaitable<void> {
    return this.#discarded ? this.#tx.abandon() : this.#tx.saveImmediate(headerSink(this.#res));
  }

  beforeEnd(): Awaitable<void> {
    return this.#discarded ? this.#tx.abandon() : this.#tx.endImmediate();
  }

  onError(error: unknown): void {
    this.#sessions.options.onError(error);
    void this.#tx.abandon();
  }

  onAbort(): void {
    void this.#tx.abandon();
  }
}

/**
 * Wraps a node:http handler: the session is loaded before it runs and saved before its response
 * goes out. A handler that throws before responding gets a 500 and its changes are not saved
 * (eZ skipped the write on a request error); a LOCKED session gets a 503.
 * @example
 * http.createServer(withSessions(sessions, (req, res, session) => res.end(session.userId ?? '-')));
 */
export function withSessions(
  sessions: SessionManager,
  handler: (req: IncomingMessage, res: ServerResponse, session: Session) => unknown,
  options: BeginOptions = {},
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void (async () => {
      let held: Attached;
      try {
        held = await attachHeld(sessions, req, res, options);
      } catch (error) {
        return fail(res, isSessiondError(error, 'LOCKED') ? 503 : 500, error, sessions);
      }
      try {
        await handler(req, res, held.session);
      } catch (error) {
        if (res.headersSent || held.ended) return sessions.options.onError(error);
        // The failure may have left the session half changed: nothing of this request is saved.
        held.discard();
        fail(res, 500, error, sessions);
      }
    })();
  };
}

function fail(res: ServerResponse, status: number, error: unknown, sessions: SessionManager) {
  sessions.options.onError(error);
  if (res.headersSent) return void res.destroy();
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.end(status === 503 ? 'session busy, try again\n' : 'internal error\n');
}
