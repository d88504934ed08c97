/**
 * The web layer under load (not a test): one small app, on every request read a counter from the
 * session, increment it and write it back, served by Express and by Fastify, bare, with sessiond
 * (embedded and remote), and with the usual Redis-backed session middleware.
 *
 *   node bench/web.ts [seconds-per-case = 8] [rounds = 3] [case ...]
 *
 * Each app runs in its own process (as does the sessiond server of the remote case, and
 * redis-server), on 127.0.0.1 only; the load comes from autocannon in this process: 50
 * connections, each request carrying one of 1,000 sessions made beforehand (in turn), after a
 * 2 s warm-up. Every case runs once per round; the table shows each case's median round, with
 * req/s, latency, the CPU time per request of the app's process and of its backing service
 * (which, unlike req/s, other load on the machine barely moves), and the ratios of the issue's
 * targets. Cases: see CASES; all by default. Needs redis-server on the PATH for the Redis cases.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import { createClient } from '@redis/client';
import { RedisStore } from 'connect-redis';
import express, { type Express } from 'express';
import session from 'express-session';
import Fastify, { type FastifyInstance, type FastifyPluginCallback } from 'fastify';
import { SessiondClient } from '../src/client/index.ts';
import { Engine } from '../src/core/engine.ts';
import { SessiondServer } from '../src/server/index.ts';
import { createLogger } from '../src/server/observability/logger.ts';
import { MemoryStore } from '../src/store/memory/index.ts';
import { SqliteStore } from '../src/store/sqlite/index.ts';
import { expressSessions, sessionOf } from '../src/web/express/index.ts';
import { fastifySessions } from '../src/web/fastify/index.ts';
import { createSessions, type Session, type SessionManager } from '../src/web/index.ts';
import { startRedis } from './support.ts';

const require = createRequire(import.meta.url);

/** The slice of autocannon's API used here (the package ships no types). */
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  requests: Array<{ setupRequest: (request: AutocannonRequest) => AutocannonRequest }>;
}
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
const autocannon = require('autocannon') as (
  options: AutocannonOptions,
) => Promise<AutocannonResult>;

/**
 * @fastify/session is loaded untyped: its types declare FastifyRequest.session as its own
 * session, which cannot share one program with sessiond's declaration of the same property.
 */
const fastifySession = (
  require('@fastify/session') as { default: FastifyPluginCallback<Record<string, unknown>> }
).default;

const CONNECTIONS = 50;
const SESSIONS = 1_000;
const WARMUP_SECONDS = 2;
const SECRET = 'a bench secret of more than thirty-two bytes';

/** Where a case's app finds its backing services. */
interface Services {
  redisPort: number;
  sessiondPort: number;
  dir: string;
}

/** A case: builds its app (in its own process) and listens. */
type Build = (services: Services) => Promise<{ listen(): Promise<number> }>;

const CASES: Record<string, { framework: 'express' | 'fastify'; build: Build }> = {
  'express bare': { framework: 'express', build: async () => expressApp(bareExpress()) },
  'express + floor middleware': {
    framework: 'express',
    build: async () => expressApp(floorExpress()),
  },
  'express + sessiond embedded (memory)': {
    framework: 'express',
    build: async () => expressApp(sessiondExpress(embeddedMemory())),
  },
  'express + sessiond embedded (sqlite)': {
    framework: 'express',
    build: async ({ dir }) => expressApp(sessiondExpress(await embeddedSqlite(dir))),
  },
  'express + sessiond remote': {
    framework: 'express',
    build: async ({ sessiondPort }) => expressApp(sessiondExpress(await remote(sessiondPort))),
  },
  'express + express-session + connect-redis': {
    framework: 'express',
    build: async ({ redisPort }) => expressApp(await expressSessionRedis(redisPort)),
  },
  'fastify bare': { framework: 'fastify', build: async () => fastifyApp(bareFastify()) },
  'fastify + sessiond embedded (memory)': {
    framework: 'fastify',
    build: async () => fastifyApp(await sessiondFastify(embeddedMemory())),
  },
  'fastify + sessiond remote': {
    framework: 'fastify',
    build: async ({ sessiondPort }) =>
      fastifyApp(await sessiondFastify(await remote(sessiondPort))),
  },
  'fastify + @fastify/session + connect-redis': {
    framework: 'fastify',
    build: async ({ redisPort }) => fastifyApp(await fastifySessionRedis(redisPort)),
  },
};

// ---- the apps (each runs in a child process) ----

/** The app's one piece of work: read the counter, add one, write it back. */
function count(session: Pick<Session, 'get' | 'set'>): string {
  const n = ((session.get('n') as number | undefined) ?? 0) + 1;
  session.set('n', n);
  return String(n);
}

function bareExpress(): Express {
  const app = express();
  let n = 0;
  app.get('/', (_req, res) => void res.send(String(++n)));
  return app;
}

/**
 * The least a session middleware can do, as a yardstick for the others: read the id from the
 * cookie, keep the counter in a Map, and take one turn of the microtask queue, as any store call
 * does, before the handler runs. No signing, no expiry, no Set-Cookie, nothing saved.
 */
function floorExpress(): Express {
  const app = express();
  const counters = new Map<string, number>();
  const ids = new WeakMap<object, string>();
  app.use((req, _res, next) => {
    const cookie = req.headers.cookie ?? '';
    ids.set(req, cookie.slice(cookie.indexOf('=') + 1));
    void Promise.resolve().then(() => next());
  });
  app.get('/', (req, res) => {
    const id = ids.get(req)!;
    const n = (counters.get(id) ?? 0) + 1;
    counters.set(id, n);
    res.send(String(n));
  });
  return app;
}

function sessiondExpress(sessions: SessionManager): Express {
  const app = express();
  app.use(expressSessions(sessions));
  app.get('/', (req, res) => void res.send(count(sessionOf(req))));
  return app;
}

async function expressSessionRedis(port: number): Promise<Express> {
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  await client.connect();
  const app = express();
  app.use(
    session({
      store: new RedisStore({ client }),
      secret: SECRET,
      resave: false,
      saveUninitialized: false,
    }),
  );
  app.get('/', (req, res) => {
    const data = req.session as unknown as { n?: number };
    data.n = (data.n ?? 0) + 1;
    res.send(String(data.n));
  });
  return app;
}

function bareFastify(): FastifyInstance {
  const app = Fastify();
  let n = 0;
  app.get('/', async () => String(++n));
  return app;
}

async function sessiondFastify(sessions: SessionManager): Promise<FastifyInstance> {
  const app = Fastify();
  await app.register(fastifySessions, { sessions });
  app.get('/', async (request) => count(request.session));
  return app;
}

async function fastifySessionRedis(port: number): Promise<FastifyInstance> {
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  await client.connect();
  const app = Fastify();
  await app.register(fastifyCookie);
  await app.register(fastifySession, {
    secret: SECRET,
    store: new RedisStore({ client }),
    saveUninitialized: false,
    rolling: false,
    cookie: { secure: false },
  });
  // @fastify/session's session, which also has get() and set().
  app.get('/', async (request) => count(request.session));
  return app;
}

function embeddedMemory(): SessionManager {
  return createSessions({ engine: new Engine({ store: new MemoryStore() }), keys: [SECRET] });
}

async function embeddedSqlite(dir: string): Promise<SessionManager> {
  const store = await SqliteStore.open({ path: join(dir, 'web.db') });
  return createSessions({ engine: new Engine({ store }), keys: [SECRET] });
}

async function remote(port: number): Promise<SessionManager> {
  const client = await SessiondClient.connect({ port });
  return createSessions({ client, keys: [SECRET] });
}

function expressApp(app: Express) {
  return {
    async listen() {
      const server = app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return (server.address() as AddressInfo).port;
    },
  };
}

function fastifyApp(app: FastifyInstance) {
  return {
    async listen() {
      await app.listen({ port: 0, host: '127.0.0.1' });
      return (app.server.address() as AddressInfo).port;
    },
  };
}

/** A child: serves one case (or the sessiond server) and reports its port and CPU time. */
async function child(role: string, services: Services): Promise<void> {
  let port: number;
  if (role === 'sessiond-server') {
    const engine = new Engine({ store: new MemoryStore() });
    const server = await SessiondServer.start({
      engine,
      resp: { host: '127.0.0.1', port: 0 },
      http: false,
      logger: createLogger({ level: 'warn' }),
    });
    port = server.respAddress.port;
  } else {
    port = await (await CASES[role]!.build(services)).listen();
  }
  process.on('message', () => process.send!({ cpu: process.cpuUsage() }));
  process.send!({ port });
}

// ---- the load (this process) ----

interface Started {
  process: ChildProcess;
  port: number;
  /** CPU time (µs, user + system) the child has used so far. */
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

async function start(role: string, services: Services): Promise<Started> {
  const child = fork(fileURLToPath(import.meta.url), ['--child', role, JSON.stringify(services)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const [first] = (await once(child, 'message')) as [{ port: number }];
  return {
    process: child,
    port: first.port,
    async cpu() {
      child.send('cpu');
      const [reply] = (await once(child, 'message')) as [{ cpu: NodeJS.CpuUsage }];
      return reply.cpu.user + reply.cpu.system;
    },
    async stop() {
      child.kill();
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    },
  };
}

/** Makes the sessions: one request each without a cookie; returns the cookies they set. */
async function makeSessions(url: string): Promise<string[]> {
  const cookies: string[] = [];
  let made = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (made < SESSIONS) {
        made++;
        const response = await fetch(url);
        await response.arrayBuffer();
        const line = response.headers.getSetCookie()[0];
        if (line !== undefined) cookies.push(line.split(';')[0]!);
      }
    }),
  );
  return cookies;
}

/** What the counter of a session reads now (one more request). */
async function counterOf(url: string, cookie: string): Promise<number> {
  return Number(await (await fetch(url, { headers: { cookie } })).text());
}

function load(url: string, cookies: readonly string[], seconds: number) {
  let next = 0;
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        // Each request carries the next session's cookie, so all of them stay in use.
        setupRequest: (request) => {
          request.headers = { ...request.headers, cookie: cookies[next++ % cookies.length]! };
          return request;
        },
      },
    ],
  });
}

interface Row {
  name: string;
  framework: string;
  rps: number;
  p50: number;
  p99: number;
  /** CPU µs of the app's process per request. */
  appPerRequest: number;
  /** CPU µs of the sessiond server or Redis per request (0 when there is none). */
  backingPerRequest: number;
  /** Share of one core the load generator used. */
  loadCpu: number;
  problems: string;
}

/** CPU time (µs) the case's backing service (the sessiond server, or Redis) has used so far. */
type BackingCpu = (() => Promise<number>) | undefined;

async function run(
  name: string,
  seconds: number,
  services: Services,
  backingCpu: BackingCpu,
): Promise<Row> {
  const app = await start(name, services);
  try {
    const url = `http://127.0.0.1:${app.port}/`;
    let cookies = await makeSessions(url);
    const sessions = cookies.length;
    // The bare apps set no cookie; they get as many (ignored) cookies of the same size.
    if (sessions === 0)
      cookies = Array.from(
        { length: SESSIONS },
        (_, i) => `sessiond=${String(i).padStart(32, '0')}`,
      );
    await load(url, cookies, WARMUP_SECONDS);
    const serverBefore = await app.cpu();
    const backingBefore = await backingCpu?.();
    const loadBefore = process.cpuUsage();
    const started = performance.now();
    const result = await load(url, cookies, seconds);
    const wall = (performance.now() - started) * 1000;
    const used = process.cpuUsage(loadBefore);
    const serverCpu = (await app.cpu()) - serverBefore;
    const backing = backingBefore === undefined ? 0 : (await backingCpu!()) - backingBefore;
    const problems: string[] = [];
    if (result.errors || result.timeouts || result.non2xx) {
      problems.push(
        `${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`,
      );
    }
    if (sessions > 0) {
      if (sessions !== SESSIONS) problems.push(`${sessions} of ${SESSIONS} sessions made`);
      // Every session was used about total / SESSIONS times: a counter of 1 means it was lost.
      const counter = await counterOf(url, cookies[0]!);
      if (counter < 2) problems.push(`a session's counter reads ${counter}: sessions not kept`);
    }
    return {
      name,
      framework: CASES[name]!.framework,
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      appPerRequest: serverCpu / result.requests.total,
      backingPerRequest: backing / result.requests.total,
      loadCpu: (used.user + used.system) / wall,
      problems: problems.join('; '),
    };
  } finally {
    await app.stop();
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 8);
  const rounds = Number(process.argv[3] ?? 3);
  const chosen = process.argv.slice(4);
  const names = chosen.length ? chosen : Object.keys(CASES);
  for (const name of names) if (!CASES[name]) throw new Error(`no case "${name}"`);
  const dir = mkdtempSync(join(tmpdir(), 'sessiond-bench-web-'));
  const needsRedis = names.some((name) => name.includes('redis'));
  const redis = needsRedis ? await startRedis() : undefined;
  const needsServer = names.some((name) => name.includes('remote'));
  const services: Services = { redisPort: redis?.port ?? 0, sessiondPort: 0, dir };
  const server = needsServer ? await start('sessiond-server', services) : undefined;
  services.sessiondPort = server?.port ?? 0;
  const runs = new Map<string, Row[]>(names.map((name) => [name, []]));
  try {
    console.log(
      `node ${process.version}, ${CONNECTIONS} connections, ${SESSIONS} sessions, ` +
        `${WARMUP_SECONDS} s warm-up + ${seconds} s per case, ${rounds} rounds`,
    );
    // Rounds interleave the cases, so a burst of load from elsewhere hits all of them alike.
    for (let round = 1; round <= rounds; round++) {
      for (const name of names) {
        const backingCpu: BackingCpu = name.includes('redis')
          ? () => redisCpu(redis!.cli)
          : name.includes('remote')
            ? () => server!.cpu()
            : undefined;
        const row = await run(name, seconds, services, backingCpu);
        runs.get(name)!.push(row);
        console.log(
          `${round}  ${name.padEnd(44)} ${Math.round(row.rps).toLocaleString('en-US').padStart(8)} req/s` +
            `  p50 ${row.p50} ms  p99 ${row.p99} ms  app ${Math.round(row.appPerRequest)} µs/req` +
            `  backing ${Math.round(row.backingPerRequest)} µs/req  load CPU ${pct(row.loadCpu)}` +
            `${row.problems ? `  !! ${row.problems}` : ''}`,
        );
      }
    }
  } finally {
    await server?.stop();
    redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  printMarkdown(runs);
}

/** The table: each case's median round (by req/s), the range of its rounds, and the ratios. */
function printMarkdown(runs: Map<string, Row[]>): void {
  const median = new Map<string, Row>();
  for (const [name, rows] of runs) {
    median.set(name, [...rows].sort((a, b) => a.rps - b.rps)[Math.floor((rows.length - 1) / 2)]!);
  }
  const find = (framework: string, kind: RegExp) =>
    [...median.values()].find((r) => r.framework === framework && kind.test(r.name));
  const k = (rps: number) => `${(rps / 1000).toFixed(1)}k`;
  console.log(
    '\n| case | req/s (median) | rounds | p50 ms | p99 ms | app CPU µs/req | backing CPU µs/req | ÷ bare | ÷ Redis middleware |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, row] of median) {
    const all = runs.get(name)!.map((r) => r.rps);
    const ratio = (other: Row | undefined) =>
      other && /sessiond|floor/.test(name) ? `${(row.rps / other.rps).toFixed(2)}×` : '';
    const backing = row.backingPerRequest ? String(Math.round(row.backingPerRequest)) : '';
    console.log(
      `| ${name} | ${Math.round(row.rps).toLocaleString('en-US')} | ` +
        `${k(Math.min(...all))}–${k(Math.max(...all))} | ${row.p50} | ${row.p99} | ` +
        `${Math.round(row.appPerRequest)} | ${backing} | ${ratio(find(row.framework, /bare/))} | ` +
        `${ratio(find(row.framework, /redis/))} |`,
    );
  }
}

/** Redis's own CPU time (µs), from INFO cpu. */
async function redisCpu(cli: (...args: string[]) => Promise<string>): Promise<number> {
  const info = await cli('info', 'cpu');
  const seconds = (field: string) => Number(new RegExp(`${field}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6;
}

const pct = (share: number) => `${Math.round(share * 100)}%`;

if (process.argv[2] === '--child') {
  await child(process.argv[3]!, JSON.parse(process.argv[4]!) as Services);
} else {
  await main();
}
