/**
 * sessiond/web/hono: sessions for Hono 4 as one middleware, on any runtime Hono runs on.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { isSessiondError } from '../../errors.ts';
import type { BeginOptions, SessionManager } from '../manager.ts';
import type { HeaderSink, RequestLike } from '../request.ts';
import type { Session } from '../session.ts';
import type { SessionTransaction } from '../transaction.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** This request's session (sessiond), once `honoSessions` has run. */
    session: Session;
  }
}

/** The Env of an app with sessions, for `new Hono<SessionEnv>()` where a generic Env is used. */
export interface SessionEnv {
  Variables: { session: Session };
}

/** Options of `honoSessions`. */
export interface HonoSessionsOptions extends BeginOptions {
  /**
   * The peer's address, for `trustProxy`, on runtimes other than @hono/node-server (which is
   * read directly; when given, this wins): e.g. `(c) => getConnInfo(c).remote.address` from
   * Bun's or Deno's adapter. Without it, no proxy is trusted there.
   */
  remoteAddress?: (c: Context) => string | undefined;
}

/** What @hono/node-server puts in `c.env`: the node:http request underneath. */
interface NodeBindings {
  incoming?: {
    headers: RequestLike['headers'];
    socket?: { encrypted?: boolean; remoteAddress?: string };
  };
}

/**
 * What the web layer reads of a Hono request. On @hono/node-server the socket says whether TLS
 * ended here; elsewhere the runtime's URL does. A form body is read (and cached by Hono for the
 * handler) only where the query carrier may carry the id in it.
 */
export async function requestOf(
  c: Context,
  sessions: SessionManager,
  options: HonoSessionsOptions = {},
): Promise<RequestLike> {
  const url = c.req.url;
  const incoming = (c.env as NodeBindings | undefined)?.incoming;
  const request: RequestLike = incoming
    ? {
        url,
        headers: incoming.headers,
        // Not the URL's scheme: node-server takes it from an absolute-form target, which any
        // client can send over plain HTTP (defends against a client claiming HTTPS).
        encrypted: incoming.socket?.encrypted === true,
        ...(incoming.socket?.remoteAddress !== undefined && {
          remoteAddress: incoming.socket.remoteAddress,
        }),
      }
    : { url, headers: Object.fromEntries(c.req.raw.headers), encrypted: url.startsWith('https:') };
  const address = options.remoteAddress?.(c);
  if (address !== undefined) request.remoteAddress = address;
  const { carrier } = sessions.options;
  if (
    (carrier === 'query' || carrier === 'cookie-or-query') &&
    c.req.method === 'POST' &&
    // Urlencoded forms only: a multipart upload is not buffered for the sake of an id.
    c.req.header('content-type')?.startsWith('application/x-www-form-urlencoded')
  ) {
    request.body = await c.req.parseBody();
  }
  return request;
}

/**
 * A HeaderSink over the context's response. A Response from fetch() has immutable headers: it
 * is copied once into a mutable one, as Hono's own c.header() does.
 */
export function headerSink(c: Context): HeaderSink {
  const write = (change: (headers: Headers) => void): void => {
    try {
      change(c.res.headers);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      c.res = new Response(c.res.body, c.res);
      change(c.res.headers);
    }
  };
  return {
    get: (name) => c.res.headers.get(name) ?? undefined,
    set: (name, value) => write((headers) => headers.set(name, value)),
    append: (name, value) => write((headers) => headers.append(name, value)),
  };
}

/**
 * Hono middleware that sets `c.get('session')` (typed through ContextVariableMap) and saves the
 * session after the handler, into the response's headers before it is returned. A handler that
 * throws saves nothing; a LOCKED session answers 503. Mount it once per route (a route that
 * needs another concurrency gets its own). Changes made while a streamed body is still being
 * produced are not saved: finish with the session before streaming.
 *
 * @example
 * app.use('/account/*', honoSessions(sessions));
 * app.post('/cart', honoSessions(sessions, { concurrency: 'lock' }), (c) => {
 *   c.get('session').set('cart', ['apple']);
 *   return c.text('added');
 * });
 */
export function honoSessions(
  sessions: SessionManager,
  options: HonoSessionsOptions = {},
): MiddlewareHandler<SessionEnv> {
  const begin: BeginOptions =
    options.concurrency === undefined ? {} : { concurrency: options.concurrency };
  return async (c, next) => {
    if (c.get('session') !== undefined) {
      // Two transactions on one session in one request would overwrite each other's writes.
      throw new Error('a session is already attached to this request');
    }
    let tx: SessionTransaction;
    try {
      tx = await sessions.begin(await requestOf(c, sessions, options), begin);
    } catch (error) {
      // Busy, not broken: 503, and Hono's error handler answers it as is.
      if (isSessiondError(error, 'LOCKED')) {
        throw new HTTPException(503, { message: 'session busy, try again', cause: error });
      }
      throw error;
    }
    c.set('session', tx.session);
    try {
      await next();
    } catch (error) {
      await tx.abandon();
      throw error;
    }
    // Hono catches a handler's error and answers it before this runs: c.error tells. A failed
    // request saves nothing it half changed (as eZ skipped the write on an error).
    if (c.error !== undefined) return void (await tx.abandon());
    await tx.commit(headerSink(c));
  };
}
