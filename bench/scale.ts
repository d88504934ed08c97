/**
 * Each store through the engine, and sessiond scaled out over a Redis Cluster (not a test).
 *
 *   node bench/scale.ts [seconds-per-case]
 *
 * (a) The engine directly on each store (memory, sqlite, postgres, redis, redis cluster), 64
 *     operations in flight over 10,000 sessions: GET, SET and INC of one variable, and a web
 *     request's load + save (engine.load, then engine.setMany of 2 variables; one request is
 *     both). The last column is how many cores the whole machine had busy meanwhile.
 * (b) One, two and three `sessiond serve` processes over one Redis Cluster of three masters,
 *     under the same load: 64 clients spread round-robin over the servers, each with one
 *     command in flight, a mix of GET (half), SET and INC over 1,000 sessions. Total ops/s, and
 *     the CPU each part used (cores busy: CPU seconds per wall-clock second, from /proc), with
 *     what the rest of the machine used meanwhile: on a small or shared machine that, not
 *     sessiond, decides whether more servers can help.
 *
 * Everything listens on loopback only. PostgreSQL and Redis are the machine's (127.0.0.1:5432,
 * trust auth; 127.0.0.1:6379), in a database and a key prefix made for the run and removed
 * after it; the Redis Cluster is started by the test harness and stopped after it. Each case
 * stops by itself after its time.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createClient } from '@redis/client';
import pg from 'pg';
import { SessiondClient } from '../src/client/client.ts';
import { Engine } from '../src/core/engine.ts';
import { MemoryStore } from '../src/store/memory/memory-store.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { startRedisCluster, type RedisClusterHarness } from '../src/store/redis/cluster-harness.ts';
import { RedisStore } from '../src/store/redis/redis-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/types.ts';

const seconds = Number(process.argv[2] ?? 3);
const IN_FLIGHT = 64;
const SESSIONS = 10_000;
const SERVER_SESSIONS = 1_000;
const PG_SERVER = process.env['SESSIOND_TEST_PG'] ?? 'postgres://postgres@127.0.0.1:5432';
const REDIS_URL = process.env['SESSIOND_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const SESSIOND = fileURLToPath(new URL('../bin/sessiond.js', import.meta.url));
const run = promisify(execFile);
/** USER_HZ, the unit of /proc's CPU times on Linux. */
const TICKS_PER_SECOND = 100;

/** Runs `op` with `inFlight` callers for `forSeconds`; operations per second. */
async function rate(
  inFlight: number,
  op: (i: number, worker: number) => Promise<unknown>,
  forSeconds = seconds,
): Promise<number> {
  const start = performance.now();
  const end = start + forSeconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, worker) => {
      for (let i = worker; performance.now() < end; i += inFlight) {
        await op(i, worker);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

/** Calls `fn` for 0..count-1, {@link IN_FLIGHT} at a time. */
async function each(count: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async (_, worker) => {
      for (let i = worker; i < count; i += IN_FLIGHT) await fn(i);
    }),
  );
}

/** One line of the progress shown while the run goes on; the tables come at the end. */
const progress = (cells: readonly string[]) =>
  console.log(cells.map((cell, i) => (i === 0 ? cell.padEnd(18) : cell.padStart(17))).join(''));

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A markdown table; the first column left-aligned, the others right-aligned. */
function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  const rule = `| ${widths.map((w, c) => (c === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(head), rule, ...rows.map(line)].join('\n');
}

// ---- (a) the engine on each store ----

const OPS = ['get', 'set', 'inc', 'web load+save'] as const;

async function engineCase(label: string, store: Store): Promise<string[]> {
  const engine = new Engine({ store, defaultTimeout: 3600, onError: console.error });
  try {
    await engine.ready();
    const ids = Array.from({ length: SESSIONS }, (_, i) => `bench-${i}`);
    await each(SESSIONS, async (i) => {
      await engine.create(ids[i]!);
      await engine.set(ids[i]!, 'n', '0');
    });
    const pick = (i: number) => ids[(i * 7919) % SESSIONS]!;
    const [machineBefore, start] = [machineSeconds(), performance.now()];
    const results = [
      await rate(IN_FLIGHT, (i) => engine.get(pick(i), 'n')),
      await rate(IN_FLIGHT, (i) => engine.set(pick(i), 'v', String(i))),
      await rate(IN_FLIGHT, (i) => engine.inc(pick(i), 'n')),
      await rate(IN_FLIGHT, async (i) => {
        const id = pick(i);
        const session = await engine.load(id);
        await engine.setMany(id, [
          ['page', `/item/${i}`],
          ['views', String(Number(session?.vars.get('views') ?? 0) + 1)],
        ]);
      }),
    ];
    const machine = (machineSeconds() - machineBefore) / ((performance.now() - start) / 1000);
    const row = [label, ...results.map(fmt), machine.toFixed(2)];
    progress(row);
    return row;
  } finally {
    await engine.close();
  }
}

// ---- (b) sessiond processes over the cluster ----

interface Serve {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

/** `sessiond serve --store <store> --port 0 --http-port=-1`; resolves once it listens. */
async function serve(store: string): Promise<Serve> {
  const child = spawn(
    process.execPath,
    [SESSIOND, 'serve', '--store', store, '--port', '0', '--http-port=-1'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  let stdout = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const found = /RESP on 127\.0\.0\.1:(\d+)/.exec(stdout);
      if (found) resolve(Number(found[1]));
    });
    child.once('exit', () => reject(new Error(`sessiond serve exited:\n${stderr}`)));
  }).catch(async (error: unknown) => {
    await stop();
    throw error;
  });
  return { child, port, stop };
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds the whole machine has spent busy (every process, every core), from /proc/stat. */
function machineSeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}

async function redisPids(cluster: RedisClusterHarness): Promise<number[]> {
  return Promise.all(
    cluster.ports.map(async (port) => {
      const { stdout } = await run('redis-cli', ['-p', String(port), 'INFO', 'server']);
      return Number(/process_id:(\d+)/.exec(stdout)![1]);
    }),
  );
}

async function scaleCase(
  store: string,
  servers: number,
  redis: readonly number[],
): Promise<string[]> {
  const running: Serve[] = [];
  const clients: SessiondClient[] = [];
  try {
    for (let i = 0; i < servers; i++) running.push(await serve(store));
    for (let i = 0; i < IN_FLIGHT; i++) {
      const port = running[i % servers]!.port;
      clients.push(await SessiondClient.connect({ host: '127.0.0.1', port }));
    }
    const op = (i: number, worker: number) => {
      const client = clients[worker]!;
      const sid = `scale-${(i * 7919) % SERVER_SESSIONS}`;
      switch (i % 4) {
        case 0:
        case 1:
          return client.get(sid, 'n');
        case 2:
          return client.set(sid, 'v', String(i));
        default:
          return client.inc(sid, 'n');
      }
    };
    // Warm-up: the servers' JIT and the connections' first round trips are not measured.
    await rate(IN_FLIGHT, op, 1);
    const pids = {
      load: [process.pid],
      sessiond: running.map((s) => s.child.pid!),
      redis,
    };
    const before = Object.values(pids).map((group) => group.map(cpuSeconds));
    const machineBefore = machineSeconds();
    const start = performance.now();
    const perSecond = await rate(IN_FLIGHT, op);
    const wall = (performance.now() - start) / 1000;
    const busy = Object.values(pids).map(
      (group, g) => group.reduce((sum, pid, p) => sum + cpuSeconds(pid) - before[g]![p]!, 0) / wall,
    );
    const machine = (machineSeconds() - machineBefore) / wall;
    const ours = busy.reduce((a, b) => a + b, 0);
    const row = [
      String(servers),
      fmt(perSecond),
      ...busy.map((cores) => cores.toFixed(2)),
      Math.max(0, machine - ours).toFixed(2),
      machine.toFixed(2),
    ];
    progress(row);
    return row;
  } finally {
    await Promise.all(clients.map((client) => client.disconnect()));
    await Promise.all(running.map((s) => s.stop()));
  }
}

// ---- the run ----

const cleanups: Array<() => Promise<void>> = [];
try {
  console.log(
    `node ${process.version}, ${availableParallelism()} cores, ${seconds} s per case, ${IN_FLIGHT} in flight, ${SESSIONS} sessions; loadavg ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}`,
  );
  progress(['store', ...OPS, 'machine cores']);

  const dir = mkdtempSync(join(tmpdir(), 'sessiond-scale-'));
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));

  const database = `sessiond_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: `${PG_SERVER}/postgres` });
  await admin.connect();
  // The name is made above from hex digits: it cannot carry SQL.
  await admin.query(`CREATE DATABASE ${database}`);
  cleanups.push(async () => {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
  });

  const prefix = `sessiond-bench:${randomBytes(6).toString('hex')}:`;
  cleanups.push(async () => {
    const redis = createClient({ url: REDIS_URL });
    await redis.connect();
    for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
      if (keys.length > 0) await redis.del(keys);
    }
    await redis.close();
  });

  const cluster = await startRedisCluster({ masters: 3 });
  cleanups.push(() => cluster.stop());

  const engineRows = [
    await engineCase('memory', new MemoryStore()),
    await engineCase(
      'sqlite (full)',
      await SqliteStore.open({ path: join(dir, 'bench.db'), durability: 'full' }),
    ),
    await engineCase(
      'postgres',
      await PostgresStore.open({ url: `${PG_SERVER}/${database}`, schema: 'sessiond' }),
    ),
    await engineCase('redis', await RedisStore.open({ url: REDIS_URL, prefix })),
    await engineCase(
      'redis cluster',
      await RedisStore.open({ cluster: { rootNodes: cluster.rootNodes }, prefix }),
    ),
  ];

  // The servers' sessions, made once through a store like theirs (default prefix).
  const clusterStore = `redis://${cluster.ports.map((port) => `127.0.0.1:${port}`).join(',')}`;
  const setup = new Engine({
    store: await RedisStore.open({ cluster: { rootNodes: cluster.rootNodes } }),
    defaultTimeout: 3600,
  });
  await each(SERVER_SESSIONS, async (i) => {
    await setup.create(`scale-${i}`);
    await setup.set(`scale-${i}`, 'n', '0');
  });
  await setup.close();

  const SCALE_HEAD = [
    'sessiond servers',
    'ops/s',
    'load generator',
    'sessiond',
    'redis-servers',
    'other processes',
    'machine',
  ];
  console.log(
    `\ncores busy (CPU s per wall s), loadavg ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')}`,
  );
  progress(SCALE_HEAD);
  const redis = await redisPids(cluster);
  const scaleRows = [];
  for (const servers of [1, 2, 3]) {
    scaleRows.push(await scaleCase(clusterStore, servers, redis));
  }

  console.log(`\n${table(['store', ...OPS, 'machine cores busy'], engineRows)}\n`);
  console.log(table(SCALE_HEAD, scaleRows));
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(console.error);
}
