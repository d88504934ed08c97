import { Buffer } from 'node:buffer';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP, type AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { TlsOptions } from 'node:tls';
import { SessiondError, syntaxError } from '../../errors.ts';
import { DEFAULT_DECODER_LIMITS } from '../../protocol/resp/decoder.ts';
import type { ErrorReply, Reply } from '../../protocol/resp/encoder.ts';
import type { AdminPage } from '../admin/admin-page.ts';
import type { Auth, Rights } from '../auth.ts';
import { COMMAND_TABLE, runCommand, type CommandContext } from '../commands/table.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { PubSub } from '../pubsub.ts';
import type { ServerStats } from '../stats.ts';
import { EventStream } from './event-stream.ts';
import { HttpError, statusOf } from './http-error.ts';
import { argFromJson, errorJson, replyToJson, type Json } from './json-codec.ts';
import { hasBody, readJsonBody } from './read-body.ts';

/** The largest request body read by default: 16 MiB, room for a full data blob plus framing. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Connections at once by default, as the RESP port allows clients. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/**
 * A client that dribbles its headers holds a socket; 10 s is ample for any honest client and
 * bounds a slowloris attack.
 */
const HEADERS_TIMEOUT_MS = 10_000;
/**
 * The whole request, body included, must arrive within a minute: 16 MiB at 300 KB/s. It does not
 * limit the reply, so LOCK ... WAIT (up to maxLockWaitMs) and SSE streams are unaffected.
 */
const REQUEST_TIMEOUT_MS = 60_000;
/** An idle keep-alive connection is closed after 5 s (Node's default, stated here on purpose). */
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** An SSE consumer with more than this unsent is cut off. */
const MAX_EVENT_BUFFER = 1024 * 1024;
/** SSE comment heartbeat: under the 30-60 s idle timeouts of common proxies. */
const HEARTBEAT_MS = 15_000;
/**
 * Channels and patterns on one SSE stream. Every publish walks every pattern, so an unbounded
 * list would let one client slow every event for all.
 */
const MAX_SUBSCRIPTIONS = 100;

/** Commands of the RESP connection that have an HTTP form of their own, or none. */
const CONNECTION_ONLY: ReadonlyMap<string, string> = new Map([
  ['AUTH', 'send an Authorization header (Bearer or Basic) with each request'],
  ['HELLO', 'send an Authorization header (Bearer or Basic) with each request'],
  ['QUIT', 'HTTP requests need no QUIT'],
  ['RESET', 'HTTP requests need no RESET'],
  ['SUBSCRIBE', 'use GET /v1/events?channels=...'],
  ['PSUBSCRIBE', 'use GET /v1/events?pattern=...'],
  ['UNSUBSCRIBE', 'close the GET /v1/events stream'],
  ['PUNSUBSCRIBE', 'close the GET /v1/events stream'],
]);

const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  // Replies hold session data: no proxy or browser cache may keep a copy.
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
};

/** Where and how the HTTP port listens, and the server parts it shares with the RESP port. */
export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Key and certificate: the port speaks HTTPS only. */
  tls?: TlsOptions;
  /** Largest request body in bytes (default {@link DEFAULT_MAX_BODY_BYTES}); past it, 413 LIMIT. */
  maxBodyBytes?: number;
  /** Connections at once (default {@link DEFAULT_MAX_CONNECTIONS}); more are closed unanswered. */
  maxConnections?: number;
  /**
   * Host names the `Host` header may carry besides IP literals and `localhost` (default none);
   * see {@link refuseForeignHost}.
   */
  allowedHosts?: readonly string[];
  /**
   * Most arguments in one command, as on the RESP port (default 65,536); a body may hold twice
   * that many JSON values, past which it is 413 LIMIT.
   */
  maxArgs?: number;
  context: CommandContext;
  auth: Auth;
  stats: ServerStats;
  pubsub: PubSub;
  /** Command timing and `GET /metrics`; none: neither. */
  metrics?: Metrics;
  /** The admin page at `/admin` and its API; none: no such routes. */
  admin?: AdminPage;
  /** Unexpected errors (a bug, a failing store): the client is told 500 ERR "internal error". */
  onError(error: unknown): void;
  /** Where a refused password is logged at `warn`, with the peer's address; none: not logged. */
  logger?: Logger;
}

/**
 * The HTTP/JSON port: every command of PROTOCOL.md through the one command table, and pub/sub
 * events as Server-Sent Events. Routes (ROUTES.md has them in full, with examples):
 *
 * - `GET /healthz`: 200 `{"ok": true}`, never behind auth (for load balancers).
 * - `POST /v1/command` with a JSON array `["SET", "sid", "name", "value"]`: runs that command.
 * - `POST /v1/command/:name` with `{"args": [...]}` (or an empty body): the same; the name is
 *   case-insensitive.
 * - `GET /v1/commands`: `{"commands": [{name, summary, min, max, admin}]}` from the table.
 * - `GET /v1/events?channels=events:created,events:expired` and/or `&pattern=events:*`
 *   (repeatable): `text/event-stream`, one event per message, `event:` the channel, `data:`
 *   the message (a session id, or a count for gc and empty).
 * - `GET /metrics`: the Prometheus text format (observability/metrics.ts has the names).
 * - `GET /admin` and its files; `GET /admin/api/stats`, `POST /admin/api/session` (admin-page.ts).
 *
 * Arguments are JSON strings (sent to the engine as their UTF-8 bytes) or `{"base64": "..."}`
 * for bytes that are not text. Success is 200 `{"result": ...}`: byte strings as text when they
 * are UTF-8, else `{"base64": "..."}`; integers as numbers, or decimal strings past 2^53; nil as
 * null; maps as objects (as [key, value] pairs if a key is not text); status replies as text.
 *
 * Failure is `{"error": {"code", "message"}}` with the code word of PROTOCOL.md and the status
 * of `STATUS_BY_CODE` (http-error.ts): ERR, NOTINT, BADID 400; NOAUTH, WRONGPASS 401 (with
 * `WWW-Authenticate`); DENIED 403; NOSESSION, NOPLUGIN 404; LIMIT 413; LOCKED 423. An unknown
 * route is 404 ERR, a wrong method 405 ERR (with `Allow`), a cross-origin browser request
 * 403 DENIED, a stream opened while shutting down 503 ERR, anything unexpected 500 ERR.
 *
 * Auth: when the server has a password, every route but `/healthz` and the admin page's files
 * needs `Authorization: Bearer <password>` or `Authorization: Basic base64(user:password)`;
 * `/metrics` and the admin API included (Prometheus sends either, from `authorization` or
 * `basic_auth` in its scrape config).
 *
 * @example
 * const http = new HttpServer({ host: '127.0.0.1', port: 8087, context, auth, stats, pubsub,
 *   onError: console.error });
 * const { port } = await http.listen();
 * // curl -d '["SET","sid","cart","3"]' -H 'content-type: application/json' localhost:8087/v1/command
 * await http.close();
 */
export class HttpServer {
  #server: Server;
  #options: HttpServerOptions;
  #maxBodyBytes: number;
  #allowedHosts: ReadonlySet<string>;
  #maxJsonValues: number;
  #streams = new Set<EventStream>();
  // Sockets with a response in progress: a parse error on one must not be answered mid-reply.
  #busySockets = new WeakSet<Duplex>();
  #closing: Promise<void> | undefined;

  constructor(options: HttpServerOptions) {
    this.#options = options;
    this.#maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#maxJsonValues = 2 * (options.maxArgs ?? DEFAULT_DECODER_LIMITS.maxArgs);
    this.#allowedHosts = new Set(
      (options.allowedHosts ?? []).map((name) => name.toLowerCase().replace(/\.$/, '')),
    );
    const serverOptions: ServerOptions = {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // Node looks for timed-out headers every 30 s by default; every second holds slowloris
      // clients to about HEADERS_TIMEOUT_MS.
      connectionsCheckingInterval: 1000,
      // An HTTP/1.1 request without Host is refused in #route, not by Node: Node's 400 has no
      // error body.
      requireHostHeader: false,
    };
    const handler = (request: IncomingMessage, response: ServerResponse) =>
      void this.#handle(request, response);
    this.#server = options.tls
      ? createHttpsServer({ ...options.tls, ...serverOptions }, handler)
      : createHttpServer(serverOptions, handler);
    // Past this, Node closes new sockets at once: defends against connection exhaustion.
    this.#server.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#server.on('drop', () => options.stats.rejectedConnections++);
    this.#server.on('connection', (socket: Duplex) => {
      options.stats.connections++;
      options.stats.totalConnections++;
      socket.once('close', () => options.stats.connections--);
    });
    this.#server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) =>
      this.#clientError(error, socket),
    );
    // An Expect other than 100-continue (RFC 9110 section 10.1.1): 417 as Node answers it, but
    // with an error body; the unread body closes the connection.
    this.#server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) =>
      this.#json(request, response, 417, errorJson('ERR', 'unsupported Expect header')),
    );
  }

  /** Starts listening; resolves with the address (the port, when 0 was asked). */
  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off('error', reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /**
   * Graceful shutdown: stops accepting connections, ends the event streams, closes idle
   * keep-alive connections, lets the requests in flight finish (their replies say
   * `Connection: close`), and resolves once every connection is gone. Calling it again returns
   * the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      // The callback is told of an error only if the server was not listening; closed either way.
      this.#server.close(() => resolve());
      for (const stream of this.#streams) stream.close();
      this.#server.closeIdleConnections();
    });
    return this.#closing;
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    this.#busySockets.add(request.socket);
    response.once('finish', () => {
      this.#busySockets.delete(request.socket);
      // A keep-alive connection whose last reply just went out is idle now: close it too.
      if (this.#closing) setImmediate(() => this.#server.closeIdleConnections());
    });
    try {
      await this.#route(request, response);
    } catch (error) {
      try {
        this.#fail(request, response, error);
      } catch (failure) {
        // Never let one request's failure escape: an unhandled rejection would end the process.
        this.#options.onError(failure);
        response.destroy();
      }
    }
  }

  async #route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    // HTTP/1.1 requires Host (RFC 9112 section 3.2), and the Host checks below read it.
    if (request.headers.host === undefined && request.httpVersion === '1.1') {
      throw syntaxError('request has no Host header');
    }
    const url = requestUrl(request);
    const path = url.pathname;
    if (path === '/healthz') {
      allow(request, ['GET', 'HEAD']);
      return this.#json(request, response, 200, { ok: true });
    }
    refuseForeignHost(request, this.#allowedHosts);
    refuseCrossOrigin(request);
    const asset = this.#options.admin?.asset(path);
    if (asset) {
      // The page's files hold no data and must load without credentials: the page asks for them.
      allow(request, ['GET', 'HEAD']);
      return this.#send(request, response, 200, asset.body, asset.headers);
    }
    // Before routing, so a client without credentials learns nothing, not even which routes exist.
    const rights = this.#authenticate(request);
    if (path === '/v1/command') {
      allow(request, ['POST']);
      const [name, ...args] = commandFromArray(
        await readJsonBody(request, this.#maxBodyBytes, this.#maxJsonValues),
      );
      return this.#command(request, response, rights, name!, args);
    }
    if (path.startsWith('/v1/command/')) {
      allow(request, ['POST']);
      const name = decodeName(path.slice('/v1/command/'.length));
      const args = argsFromObject(
        await readJsonBody(request, this.#maxBodyBytes, this.#maxJsonValues),
      );
      return this.#command(request, response, rights, name, args);
    }
    if (path === '/v1/commands') {
      allow(request, ['GET', 'HEAD']);
      return this.#json(request, response, 200, { commands: commandList() });
    }
    if (path === '/v1/events') {
      allow(request, ['GET']);
      return this.#events(response, url);
    }
    const { metrics, admin } = this.#options;
    if (path === '/metrics' && metrics) {
      allow(request, ['GET', 'HEAD']);
      const text = await metrics.text();
      return this.#send(request, response, 200, text, {
        'content-type': metrics.contentType,
        'cache-control': 'no-store',
      });
    }
    if (path === '/admin/api/stats' && admin) {
      allow(request, ['GET', 'HEAD']);
      const since = url.searchParams.get('since');
      return this.#json(request, response, 200, await admin.stats(sinceParam(since)));
    }
    if (path === '/admin/api/session' && admin) {
      // POST with the id in the body: an id in the URL would land in access and proxy logs.
      allow(request, ['POST']);
      const id = idFromObject(await readJsonBody(request, this.#maxBodyBytes, this.#maxJsonValues));
      return this.#json(request, response, 200, await admin.session(id));
    }
    throw new HttpError(404, 'ERR', 'no such route');
  }

  async #command(
    request: IncomingMessage,
    response: ServerResponse,
    rights: Rights,
    name: string,
    args: string[],
  ): Promise<void> {
    checkName(name);
    this.#options.stats.commands++;
    const context = { ...this.#options.context, admin: rights.admin };
    const { metrics } = this.#options;
    const started = metrics ? performance.now() : 0;
    let reply: Reply;
    try {
      reply = await runCommand(context, name, args);
    } catch (error) {
      metrics?.command([name, ...args], (performance.now() - started) / 1000, error);
      throw error;
    }
    metrics?.command([name, ...args], (performance.now() - started) / 1000, undefined);
    if (reply instanceof SessiondError) throw reply;
    if (isErrorReply(reply)) throw new SessiondError(reply.code, reply.message);
    this.#json(request, response, 200, { result: replyToJson(reply) });
  }

  #events(response: ServerResponse, url: URL): void {
    // A new stream would hold shutdown open until its client left.
    if (this.#closing) throw new HttpError(503, 'ERR', 'server is shutting down');
    const { stats, pubsub } = this.#options;
    const channels = url.searchParams
      .getAll('channels')
      .flatMap((list) => list.split(','))
      .filter((channel) => channel !== '')
      .map(argFromJson);
    // Patterns are not split on commas: a glob class such as [,;] may hold one.
    const patterns = url.searchParams
      .getAll('pattern')
      .filter((pattern) => pattern !== '')
      .map(argFromJson);
    if (channels.length + patterns.length === 0) {
      throw syntaxError('name at least one channel (channels=a,b) or pattern (pattern=events:*)');
    }
    if (channels.length + patterns.length > MAX_SUBSCRIPTIONS) {
      throw new SessiondError('LIMIT', `subscriptions per stream exceed ${MAX_SUBSCRIPTIONS}`);
    }
    const stream = new EventStream(response, pubsub, {
      channels: [...new Set(channels)],
      patterns: [...new Set(patterns)],
      maxBuffered: MAX_EVENT_BUFFER,
      heartbeatMs: HEARTBEAT_MS,
      onSlowConsumer: () => stats.outputBufferDisconnects++,
    });
    this.#streams.add(stream);
    response.once('close', () => this.#streams.delete(stream));
    stream.open();
  }

  #authenticate(request: IncomingMessage): Rights {
    const { auth } = this.#options;
    const initial = auth.initial();
    if (initial.authenticated) return initial;
    const header = request.headers.authorization;
    if (header === undefined) throw new SessiondError('NOAUTH', 'Authentication required.');
    const credentials = parseAuthorization(header);
    if (!credentials) {
      throw new SessiondError('NOAUTH', 'Authorization must be Bearer <password> or Basic');
    }
    const rights = auth.check(credentials.user, credentials.password);
    if (!rights) {
      this.#options.stats.authFailures++;
      // Who guessed, never what: traces password guessing without leaking a password to the logs.
      this.#options.logger?.warn(
        { protocol: 'http', peer: request.socket.remoteAddress },
        'password refused',
      );
      throw new SessiondError('WRONGPASS', 'invalid username-password pair or user is disabled.');
    }
    return rights;
  }

  #fail(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    let failure: SessiondError;
    if (error instanceof SessiondError) {
      failure = error;
    } else {
      this.#options.onError(error);
      // The client learns that something failed, never what: a stack or store error could
      // reveal internals.
      failure = new HttpError(500, 'ERR', 'internal error');
    }
    if (response.headersSent) {
      // Mid-stream there is no status left to send; cutting the connection is the only signal.
      response.destroy();
      return;
    }
    const status = statusOf(failure);
    const headers: Record<string, string> =
      failure instanceof HttpError ? { ...failure.headers } : {};
    // RFC 9110 section 15.5.2: a 401 says how to authenticate.
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="sessiond"';
    this.#json(request, response, status, errorJson(failure.code, failure.message), headers);
  }

  #json(
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    body: Json,
    headers: Readonly<Record<string, string>> = {},
  ): void {
    this.#send(request, response, status, JSON.stringify(body), { ...JSON_HEADERS, ...headers });
  }

  #send(
    request: IncomingMessage,
    response: ServerResponse,
    status: number,
    body: string | Buffer,
    headers: Readonly<Record<string, string>>,
  ): void {
    if (response.destroyed || response.headersSent) return;
    // A body left unread (refused before or while reading it) is not drained: the connection is
    // closed instead, so a rejected client cannot make the server read an endless upload.
    const close = this.#closing !== undefined || (hasBody(request) && !request.complete);
    response.writeHead(status, {
      ...headers,
      'content-length': String(Buffer.byteLength(body)),
      ...(close && { connection: 'close' }),
    });
    response.end(body);
  }

  #clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (error.code === 'ECONNRESET' || !socket.writable || this.#busySockets.has(socket)) {
      socket.destroy();
      return;
    }
    this.#options.stats.protocolErrors++;
    const [status, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? ['431 Request Header Fields Too Large', 'request headers too large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ['408 Request Timeout', 'request not received in time']
          : ['400 Bad Request', 'malformed HTTP request'];
    const body = JSON.stringify(errorJson('ERR', message));
    socket.end(
      `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
}

function requestUrl(request: IncomingMessage): URL {
  try {
    // Only the path and query are used; the base keeps a Host header from steering parsing.
    return new URL(request.url ?? '/', 'http://sessiond.invalid');
  } catch {
    throw syntaxError('malformed request target');
  }
}

function allow(request: IncomingMessage, methods: readonly string[]): void {
  if (!methods.includes(request.method ?? '')) {
    throw new HttpError(405, 'ERR', `method ${request.method ?? ''} not allowed here`, {
      allow: methods.join(', '),
    });
  }
}

/**
 * Refuses a request whose `Host` is a name the operator has not allowed. Defends against DNS
 * rebinding: a page on attacker.example whose name is re-pointed at 127.0.0.1 reaches this port
 * as its own origin (Origin and Host agree), so only the name it must use gives it away. IP
 * literals and `localhost` cannot be re-pointed by an attacker and are always accepted.
 */
function refuseForeignHost(request: IncomingMessage, allowed: ReadonlySet<string>): void {
  const host = request.headers.host ?? '';
  // `[v6]:port`, `v4:port`, `name:port` or no port.
  const name = (host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, ''))
    .toLowerCase()
    .replace(/\.$/, '');
  if (isIP(name) !== 0 || name === 'localhost' || allowed.has(name)) return;
  throw new SessiondError(
    'DENIED',
    'Host header names a host that is not allowed (see --http-allowed-hosts)',
  );
}

/**
 * Refuses a request a browser sent from another origin. Defends against cross-site request
 * forgery: a page the operator visits posting `["EMPTY"]` to a sessiond on localhost or the
 * intranet (a form post needs no CORS preflight, and the browser may hold Basic credentials).
 * Server-side clients send no Origin header and are not affected.
 */
function refuseCrossOrigin(request: IncomingMessage): void {
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host === undefined || host !== request.headers.host?.toLowerCase()) {
    throw new SessiondError('DENIED', 'cross-origin requests are refused');
  }
}

/**
 * Credentials from `Authorization: Bearer <password>` or `Basic base64(user:password)`
 * (RFC 6750, RFC 7617), as byte strings like RESP's AUTH arguments; null when malformed.
 */
function parseAuthorization(header: string): { user?: string; password: string } | null {
  const space = header.indexOf(' ');
  if (space < 0) return null;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  // Node hands header values over one byte per code unit, the byte strings Auth compares.
  if (scheme === 'bearer') return value === '' ? null : { password: value };
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('latin1');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  // `curl -u :password` sends an empty user: it means the default user, as AUTH password does.
  return user === '' ? { password } : { user, password };
}

/** `["NAME", arg, ...]`: the name as text, the arguments as byte strings. */
function commandFromArray(body: unknown): string[] {
  if (!Array.isArray(body) || body.length === 0 || typeof body[0] !== 'string') {
    throw syntaxError('body must be a JSON array: ["COMMAND", "arg", ...]');
  }
  return [body[0], ...body.slice(1).map(argFromJson)];
}

/** `{"args": [...]}`, or an empty body for none. */
function argsFromObject(body: unknown): string[] {
  if (body === undefined) return [];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw syntaxError('body must be a JSON object: {"args": [...]}');
  }
  // Unknown keys are refused: {"arg": [...]} would otherwise run the command with no arguments.
  const keys = Object.keys(body);
  if (keys.some((key) => key !== 'args')) throw syntaxError('body may only have "args"');
  const args = (body as { args?: unknown }).args;
  if (args === undefined) return [];
  if (!Array.isArray(args)) throw syntaxError('"args" must be an array');
  return args.map(argFromJson);
}

/** `{"id": "..."}`: the session id as a byte string. */
function idFromObject(body: unknown): string {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw syntaxError('body must be a JSON object: {"id": "..."}');
  }
  if (Object.keys(body).some((key) => key !== 'id')) throw syntaxError('body may only have "id"');
  return argFromJson((body as { id?: unknown }).id);
}

/** `?since=` of the admin API: ms since the epoch, or none. */
function sinceParam(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw syntaxError('since must be ms since the epoch');
  return Number(value);
}

function decodeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw syntaxError('malformed command name');
  }
}

/**
 * Command names are ASCII letters. Defends against Unicode case mapping making aliases of
 * commands: 'ſet'.toUpperCase() is 'SET'.
 */
function checkName(name: string): void {
  if (!/^[A-Za-z]{1,32}$/.test(name)) {
    throw syntaxError(`unknown command '${name.slice(0, 64)}'`);
  }
  const instead = CONNECTION_ONLY.get(name.toUpperCase());
  if (instead !== undefined) {
    throw syntaxError(`${name.toUpperCase()} is not a command over HTTP: ${instead}`);
  }
}

function commandList(): Json[] {
  return [...COMMAND_TABLE.values()].map((spec) => ({
    name: spec.name,
    summary: spec.summary,
    min: spec.min,
    // JSON has no Infinity: null means "no upper bound".
    max: Number.isFinite(spec.max) ? spec.max : null,
    admin: spec.admin === true,
  }));
}

function isErrorReply(reply: Reply): reply is ErrorReply {
  return typeof reply === 'object' && reply !== null && 'kind' in reply && reply.kind === 'error';
}
