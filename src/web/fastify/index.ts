/**
 * sessiond/web/fastify: sessions for Fastify 5 as one plugin.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { isSessiondError } from '../../errors.ts';
import type { Awaitable } from '../../store/types.ts';
import type { BeginOptions, SessionManager } from '../manager.ts';
import type { HeaderSink, RequestLike } from '../request.ts';
import type { Session } from '../session.ts';
import type { SessionTransaction } from '../transaction.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's session (sessiond), set from the preHandler stage on. */
    session: Session;
  }
  interface FastifyContextConfig {
    /** sessiond's choices for this route: `config: { session: { concurrency: 'lock' } }`. */
    session?: BeginOptions;
  }
}

/** Options of the `fastifySessions` plugin. */
export interface FastifySessionsOptions extends BeginOptions {
  /** The manager from `createSessions`. */
  sessions: SessionManager;
}

/** Where a request's transaction is: begun, saved while a stream body flows, or over. */
interface Held {
  tx: SessionTransaction;
  stage: 'open' | 'streaming' | 'done';
}

/**
 * Where a request keeps its transaction: a request decoration under a private symbol, rather
 * than a WeakMap, whose set() and the GC of its entries cost about 1 µs a request in Node 24.
 */
const HELD = Symbol('sessiond.held');

/** A request as this plugin decorates it. */
type Tagged = { [HELD]: Held | null };

const heldOf = (request: FastifyRequest): Held | null => (request as unknown as Tagged)[HELD];

/** What the web layer reads of a Fastify request: the socket's facts, not Fastify's trustProxy. */
export function requestOf(request: FastifyRequest): RequestLike {
  const socket = request.raw.socket;
  const result: RequestLike = {
    url: request.url,
    headers: request.headers,
    encrypted: (socket as Partial<TLSSocket>).encrypted === true,
  };
  const address = socket.remoteAddress;
  if (address !== undefined) result.remoteAddress = address;
  const body: unknown = request.body;
  if (body !== undefined) result.body = body;
  return result;
}

/** A HeaderSink over a Fastify reply (headers set with reply.header and on reply.raw alike). */
export function headerSink(reply: FastifyReply): HeaderSink {
  const get = (name: string): string | undefined => {
    const value = reply.getHeader(name);
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.join(', ') : String(value);
  };
  return {
    get,
    set: (name, value) => void reply.removeHeader(name).header(name, value),
    append(name, value) {
      // reply.header adds Set-Cookie lines itself; other headers are lists joined by commas.
      if (name.toLowerCase() === 'set-cookie') return void reply.header(name, value);
      const current = get(name);
      reply.header(name, current === undefined ? value : `${current}, ${value}`);
    },
  };
}

const plugin: FastifyPluginCallback<FastifySessionsOptions> = (app, options, done) => {
  const { sessions } = options;
  const defaults: BeginOptions =
    options.concurrency === undefined ? {} : { concurrency: options.concurrency };
  const { onError } = sessions.options;

  app.decorateRequest('session', null as unknown as Session);
  app.decorateRequest(HELD, null);

  // preHandler rather than onRequest: the body is parsed by then, and the query carrier reads the
  // id from a form body too (PHPLib's hidden field).
  // Callback-style hooks: over an engine that answers at once (the memory store) a request
  // loads and saves its session without a promise.
  app.addHook('preHandler', (request, reply, next) => {
    const route = request.routeOptions.config.session;
    const begun = (tx: SessionTransaction) => {
      const state: Held = { tx, stage: 'open' };
      (request as unknown as Tagged)[HELD] = state;
      request.session = tx.session;
      // Every way a response can end (sent, hijacked, cut off by the client) ends the
      // transaction, so a lock is always released.
      reply.raw.on('close', () => {
        if (state.stage === 'streaming') tx.end().catch(onError);
        else if (state.stage === 'open') void tx.abandon();
        state.stage = 'done';
      });
      next();
    };
    const failed = (error: unknown) => {
      // Busy, not broken: Fastify's error handler answers with the error's statusCode.
      if (isSessiondError(error, 'LOCKED')) Object.assign(error, { statusCode: 503 });
      next(error as Error);
    };
    let tx: Awaitable<SessionTransaction>;
    try {
      tx = sessions.beginImmediate(requestOf(request), route?.concurrency ? route : defaults);
    } catch (error) {
      return failed(error);
    }
    if (tx instanceof Promise) tx.then(begun, failed);
    else begun(tx);
  });

  // onSend is awaited before the status line and headers go out: a redirect never outruns the
  // save it leads to.
  app.addHook('onSend', (request, reply, payload, next) => {
    const state = heldOf(request);
    if (state?.stage !== 'open') return next(null, payload);
    const sent = () => next(null, payload);
    const failed = (error: unknown) => next(error as Error);
    let saved: Awaitable<void>;
    if (isStream(payload)) {
      // Headers now; changes made while the body streams are written when it ends.
      state.stage = 'streaming';
      const abandoned = (error: unknown) => {
        // The error reply that follows must not write the rest when it closes.
        state.stage = 'done';
        void state.tx.abandon().then(() => failed(error), failed);
      };
      try {
        saved = state.tx.saveImmediate(headerSink(reply));
      } catch (error) {
        return abandoned(error);
      }
      if (saved instanceof Promise) return void saved.then(sent, abandoned);
      return sent();
    }
    state.stage = 'done';
    try {
      saved = state.tx.commitImmediate(headerSink(reply));
    } catch (error) {
      return failed(error);
    }
    if (saved instanceof Promise) return void saved.then(sent, failed);
    sent();
  });

  // A failed request saves nothing it half changed (as eZ skipped the write on an error), and
  // its lock is released before the error reply goes out.
  app.addHook('onError', async (request) => {
    const state = heldOf(request);
    if (state?.stage !== 'open') return;
    state.stage = 'done';
    await state.tx.abandon();
  });

  done();
};

/**
 * A Fastify plugin that sets `request.session` and saves it in onSend, before the response goes
 * out. A route picks its concurrency with `config: { session: { concurrency: 'lock' } }`; the
 * plugin's `concurrency` is the default. A handler that throws saves nothing; a LOCKED session
 * answers 503. Not encapsulated (fastify-plugin): every route of the app gets a session.
 *
 * @example
 * await app.register(fastifySessions, { sessions });
 * app.post('/cart', { config: { session: { concurrency: 'lock' } } }, async (request) => {
 *   request.session.set('cart', ['apple']);
 *   return 'added';
 * });
 */
export const fastifySessions = fastifyPlugin(plugin, { fastify: '5.x', name: 'sessiond' });

function isStream(payload: unknown): boolean {
  return typeof (payload as { pipe?: unknown } | null)?.pipe === 'function';
}
