/**
 * sessiond/web/node: sessions for node:http handlers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isSessiondError } from '../../errors.ts';
import type { BeginOptions, SessionManager } from '../manager.ts';
import type { HeaderSink, RequestLike } from '../request.ts';
import type { Session } from '../session.ts';
import { holdResponse } from './hold-response.ts';

export { holdResponse, type HoldHooks } from './hold-response.ts';

const attached = new WeakMap<object, Session>();

/**
 * The session `attach` (or the Express middleware) gave this request.
 * @throws Error when none was attached: the middleware is missing on this route
 * @example
 * const session = sessionOf(req); session.set('theme', 'dark');
 */
export function sessionOf(req: object): Session {
  const session = attached.get(req);
  if (!session)
    throw new Error('no session on this request: is the sessiond middleware installed?');
  return session;
}

/** What the web layer reads of a node:http request. */
export function requestOf(req: IncomingMessage, url = req.url ?? '/'): RequestLike {
  const body: unknown = (req as { body?: unknown }).body;
  return {
    url,
    headers: req.headers,
    encrypted: (req.socket as Partial<TLSSocket>).encrypted === true,
    ...(req.socket.remoteAddress !== undefined && { remoteAddress: req.socket.remoteAddress }),
    ...(body !== undefined && { body }),
  };
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
  if (attached.has(req)) throw new Error('a session is already attached to this request');
  const tx = await sessions.begin(requestOf(req, options.url), options);
  attached.set(req, tx.session);
  (req as { session?: Session }).session = tx.session;
  let discarded = false;
  const held = holdResponse(res, {
    beforeHeaders: () => (discarded ? tx.abandon() : tx.save(headerSink(res))),
    beforeEnd: () => (discarded ? tx.abandon() : tx.end()),
    onError: (error) => {
      sessions.options.onError(error);
      void tx.abandon();
    },
    onAbort: () => void tx.abandon(),
  });
  return {
    session: tx.session,
    discard: () => (discarded = true),
    get ended() {
      return held.ended;
    },
  };
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
