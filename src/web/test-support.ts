/**
 * Helpers for the web layer's tests (and the Fastify and Hono adapters'): real HTTP servers on
 * port 0, a cookie jar, and both backings (an in-process engine, a remote server) over a
 * ManualClock.
 */
import { once } from 'node:events';
import {
  createServer,
  request as httpRequest,
  type RequestListener,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';
import { SessiondClient } from '../client/client.ts';
import { ManualClock } from '../core/clock.ts';
import { Engine, type EngineOptions } from '../core/engine.ts';
import { startTestServer } from '../server/test-support.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { createSessions, type BeginOptions, type SessionManager } from './manager.ts';
import { withSessions } from './node/index.ts';
import type { SessionOptions } from './options.ts';
import type { Session } from './session.ts';

/** Where sessions live in a test: `engine` is the one that holds them, in either mode. */
export interface Backing {
  name: 'embedded' | 'remote';
  clock: ManualClock;
  engine: Engine;
  /** `{ engine }` or `{ client }`: what createSessions is given. */
  options: Pick<SessionOptions, 'engine' | 'client'>;
  close(): Promise<void>;
}

/** An Engine over a MemoryStore in this process. */
export async function embedded(engineOptions: Partial<EngineOptions> = {}): Promise<Backing> {
  const clock = new ManualClock();
  const engine = new Engine({
    store: new MemoryStore({ indexedVars: ['user'] }),
    clock,
    ...engineOptions,
  });
  return { name: 'embedded', clock, engine, options: { engine }, close: () => engine.close() };
}

/** A sessiond server on port 0 and a client of it. */
export async function remote(engineOptions: Partial<EngineOptions> = {}): Promise<Backing> {
  const clock = new ManualClock();
  const server = await startTestServer({}, { clock, ...engineOptions });
  const client = await SessiondClient.connect({ port: server.respAddress.port });
  return {
    name: 'remote',
    clock,
    engine: server.engine,
    options: { client },
    close: async () => {
      await client.disconnect();
      await server.close();
    },
  };
}

/** Both backings, for `for (const make of BACKINGS) describe(...)`. */
export const BACKINGS = [embedded, remote] as const;

/** A node:http server on a free loopback port. */
export async function listen(handler: RequestListener): Promise<{
  url: string;
  port: number;
  close(): Promise<void>;
}> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Cookies as a browser keeps them for one site: set by Set-Cookie, removed by Max-Age=0. */
export class CookieJar {
  #cookies = new Map<string, string>();

  /** The Cookie request header, or undefined when the jar is empty. */
  header(): string | undefined {
    if (this.#cookies.size === 0) return undefined;
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }

  set(name: string, value: string): void {
    this.#cookies.set(name, value);
  }

  /** Takes in a response's Set-Cookie lines. */
  store(lines: readonly string[]): void {
    for (const line of lines) {
      const [pair = '', ...attributes] = line.split(';');
      const equals = pair.indexOf('=');
      const name = pair.slice(0, equals).trim();
      const value = pair.slice(equals + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=(0|-\d+)\s*$/i.test(a));
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
}

/** A browser of one site: fetches with its cookie jar, keeps what the server sets. */
export class Browser {
  readonly jar = new CookieJar();
  readonly base: string;

  constructor(base: string) {
    this.base = base;
  }

  async fetch(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
    const cookie = this.jar.header();
    const response = await fetch(this.base + path, {
      redirect: 'manual',
      ...init,
      headers: { ...(cookie !== undefined && { cookie }), ...init.headers },
    });
    this.jar.store(response.headers.getSetCookie());
    return response;
  }

  /** Fetches and reads the body as text. */
  async text(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
    return (await this.fetch(path, init)).text();
  }
}

/** A raw request with full control of the headers (Host included), through node:http. */
export function rawRequest(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<{
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A promise and the functions that settle it. */
export function deferred<T = void>(): {
  promise: Promise<T>;
  resolve: (value: T) => void;
} {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A route of `sessionApp`: returns the body to send as JSON, or `res` when it answered itself. */
export type Route = (session: Session, query: URLSearchParams, res: ServerResponse) => unknown;

/**
 * A node:http app with sessions: routes by path, each answering JSON of what it returns (or
 * ending the response itself). Returns the server and a browser of it.
 */
export async function sessionApp(
  sessions: SessionManager,
  routes: Record<string, Route>,
  begin: BeginOptions = {},
) {
  const server = await listen(
    withSessions(
      sessions,
      async (req, res, session) => {
        const url = new URL(req.url ?? '/', 'http://x');
        const route = routes[url.pathname];
        if (!route) {
          res.statusCode = 404;
          return res.end();
        }
        const result: unknown = await route(session, url.searchParams, res);
        if (result !== res) {
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(result ?? null));
        }
      },
      begin,
    ),
  );
  return { ...server, browser: () => new Browser(server.url) };
}

/**
 * For one describe(): a backing made before its tests and closed after them, and `app()`, which
 * starts a `sessionApp` over it (gc off unless asked) and closes it with the backing.
 */
export function useBacking(make: () => Promise<Backing>) {
  let backing: Backing | undefined;
  const servers: Array<{ close(): Promise<void> }> = [];
  before(async () => (backing = await make()));
  after(async () => {
    for (const server of servers) await server.close();
    await backing?.close();
  });
  return {
    get backing(): Backing {
      return backing!;
    },
    async app(
      options: Partial<SessionOptions>,
      routes: Record<string, Route>,
      begin: BeginOptions = {},
    ) {
      const sessions = createSessions({ ...backing!.options, gc: false, ...options });
      const server = await sessionApp(sessions, routes, begin);
      servers.push(server);
      return { sessions, server, browser: server.browser() };
    },
  };
}
