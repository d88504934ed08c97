/**
 * The stores a crash trial runs sessiond over, each one the trial's own: a SQLite file in a
 * temporary folder, a fresh database on the machine's PostgreSQL, a private PostgreSQL cluster,
 * a private redis-server, or the memory store. Each knows the `sessiond serve` flags that reach
 * it, how to crash its own processes at the moment sessiond is killed, how to start them again,
 * and how to remove every trace of itself.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from '../../bench/support.ts';
import { PG_SERVER } from '../multi-server/backends.ts';

const run = promisify(execFile);

/** Where Debian's PostgreSQL 15 keeps initdb and postgres, for the private cluster. */
const PG_BIN = '/usr/lib/postgresql/15/bin';

/** One store setting a trial can run against. */
export interface CrashTarget {
  /** The name the script and the tests use: `sqlite`, `redis`, `memory`, ... */
  readonly name: string;
  /** The setting in words, for reports: "sqlite, --durability full". */
  readonly setting: string;
  /** What each kill takes down with SIGKILL. */
  readonly killed: string;
  /**
   * True when every acknowledged write must survive the kills; false for the controls, which
   * are expected to lose writes and so show that the checker can fail.
   */
  readonly durable: boolean;
  /** Sets the store up (creating files, databases, processes) and returns it running. */
  open(): Promise<OpenTarget>;
}

/** A store set up by {@link CrashTarget.open}. */
export interface OpenTarget {
  /** The flags that make `sessiond serve` use this store. */
  readonly serveArgs: readonly string[];
  /**
   * SIGKILLs the store's own processes, if this target kills them: synchronous, so that the
   * caller kills sessiond in the same instant.
   */
  crash(): void;
  /** Waits for the crashed processes to be gone and starts them again on the same files. */
  restart(): Promise<void>;
  /** Stops what it started and removes its files, database or keys. Safe to call twice. */
  remove(): Promise<void>;
}

/** Every target by name. The script runs {@link defaultTargets} unless told otherwise. */
export const TARGETS: Readonly<Record<string, CrashTarget>> = {
  sqlite: sqliteTarget('full'),
  'sqlite-normal': sqliteTarget('normal'),
  postgres: {
    name: 'postgres',
    setting: 'postgres, machine server (fsync=on, synchronous_commit=on)',
    killed: 'sessiond only (the shared PostgreSQL is not ours to kill)',
    durable: true,
    open: openSharedPostgres,
  },
  'postgres-cluster': {
    name: 'postgres-cluster',
    setting: 'postgres, private cluster (fsync=on, synchronous_commit=on)',
    killed: 'sessiond + every process of the cluster',
    durable: true,
    open: openPostgresCluster,
  },
  redis: redisTarget('redis', 'appendonly yes, appendfsync always', true, [
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
  ]),
  'redis-rdb': redisTarget('redis-rdb', 'appendonly no, RDB snapshots only (control)', false, [
    '--appendonly',
    'no',
    // Redis's default save points: a snapshot after 1 h/1 change, 5 min/100, 1 min/10000.
    '--save',
    '3600 1 300 100 60 10000',
  ]),
  memory: {
    name: 'memory',
    setting: 'memory (control)',
    killed: 'sessiond',
    durable: false,
    open: () => Promise.resolve(inert(['--store', 'memory'], () => Promise.resolve())),
  },
};

/** The durable targets this machine can run: the private cluster needs root and initdb. */
export function defaultTargets(): string[] {
  const names = ['sqlite', 'postgres', 'redis'];
  if (canRunPostgresCluster()) names.splice(2, 0, 'postgres-cluster');
  return names;
}

function inert(serveArgs: readonly string[], remove: () => Promise<void>): OpenTarget {
  let removed: Promise<void> | undefined;
  return {
    serveArgs,
    crash: () => {},
    restart: () => Promise.resolve(),
    remove: () => (removed ??= remove()),
  };
}

/** A private temporary folder. */
function privateDir(label: string): string {
  // mkdtemp makes it 0700: the session ids written below are bearer credentials, even in a test.
  return mkdtempSync(join(tmpdir(), `sessiond-crash-${label}-`));
}

function sqliteTarget(durability: 'full' | 'normal'): CrashTarget {
  return {
    name: durability === 'full' ? 'sqlite' : 'sqlite-normal',
    setting: `sqlite, --durability ${durability} (WAL, synchronous=${durability.toUpperCase()})`,
    killed: 'sessiond (the store dies with it)',
    durable: true,
    open: () => {
      const dir = privateDir('sqlite');
      const args = ['--store', `sqlite:${join(dir, 'sessions.db')}`, '--durability', durability];
      return Promise.resolve(
        inert(args, () => Promise.resolve(rmSync(dir, { recursive: true, force: true }))),
      );
    },
  };
}

async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `${PG_SERVER}/postgres` });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

async function openSharedPostgres(): Promise<OpenTarget> {
  const database = `sessiond_crash_${randomBytes(6).toString('hex')}`;
  // The name is made above from hex digits: it cannot carry SQL.
  await adminQuery(`CREATE DATABASE ${database}`);
  // FORCE ends the connections of servers killed with SIGKILL, which PostgreSQL may not have
  // noticed yet.
  return inert(['--store', `${PG_SERVER}/${database}`], () =>
    adminQuery(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`),
  );
}

/** A child process and the promise of its exit. */
interface Child {
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  /** The last few kilobytes it wrote on standard error, for failure messages. */
  readonly stderr: () => string;
}

function startChild(
  command: string,
  args: readonly string[],
  options: { uid?: number; gid?: number } = {},
): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  // A command that is missing fails through `exited` and the readiness wait, not as a crash.
  child.once('error', () => {});
  return { process: child, exited, stderr: () => stderr };
}

function isRunning(child: Child): boolean {
  return child.process.exitCode === null && child.process.signalCode === null;
}

/** Resolves once `ready` answers true; fails with `child`'s standard error if it exits first. */
async function waitReady(child: Child, what: string, ready: () => Promise<boolean>) {
  // Only keeps a broken run from hanging: nothing asserts how long a start took.
  const giveUp = Date.now() + 60_000;
  for (;;) {
    if (!isRunning(child))
      throw new Error(`${what} exited before it was ready:\n${child.stderr()}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > giveUp) throw new Error(`gave up waiting for ${what}:\n${child.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function redisTarget(
  name: string,
  setting: string,
  durable: boolean,
  persistence: readonly string[],
): CrashTarget {
  return {
    name,
    setting: `redis, ${setting}`,
    killed: 'sessiond + redis-server',
    durable,
    open: async () => {
      const dir = privateDir('redis');
      const port = await freePort();
      const args = [
        '--port',
        String(port),
        // Loopback only, and no unix socket: nothing but this machine's test reaches it.
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        ...persistence,
      ];
      const ping = async () =>
        (await run('redis-cli', ['-p', String(port), 'PING'])).stdout.trim() === 'PONG';
      let server: Child;
      const start = async () => {
        server = startChild('redis-server', args);
        // PING answers LOADING until the append-only file has been replayed.
        await waitReady(server, `redis-server on port ${port}`, ping);
      };
      await start();
      let removed: Promise<void> | undefined;
      return {
        // The Redis is this trial's own, so the default key prefix is too.
        serveArgs: ['--store', `redis://127.0.0.1:${port}`],
        crash: () => {
          if (isRunning(server)) server.process.kill('SIGKILL');
        },
        restart: async () => {
          await server.exited;
          await start();
        },
        remove: () =>
          (removed ??= (async () => {
            if (isRunning(server)) server.process.kill('SIGKILL');
            await server.exited;
            rmSync(dir, { recursive: true, force: true });
          })()),
      };
    },
  };
}

/**
 * A private cluster needs PostgreSQL's server binaries and root, to run them as the `postgres`
 * user (PostgreSQL refuses to run as root).
 */
function canRunPostgresCluster(): boolean {
  return (
    process.getuid?.() === 0 &&
    existsSync(join(PG_BIN, 'initdb')) &&
    existsSync(join(PG_BIN, 'postgres'))
  );
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('no postgres user');
  return { uid, gid };
}

/** The pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // It exited while we looked.
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ")".
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}

/** Sends `name` to `pid`; a process that has exited meanwhile is not an error. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The state letter of `pid` in /proc ("T" once stopped), or null when it is gone. */
function stateOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/**
 * A PostgreSQL cluster of its own, in a temporary folder on a free loopback port, whose every
 * process a kill takes down at once, as a machine crash would (less the loss of the page cache).
 */
async function openPostgresCluster(): Promise<OpenTarget> {
  if (!canRunPostgresCluster())
    throw new Error('a private PostgreSQL cluster needs root and initdb');
  const user = await postgresUser();
  const dir = privateDir('pg');
  const data = join(dir, 'data');
  chownSync(dir, user.uid, user.gid);
  let postmaster: Child | undefined;
  const crash = () => {
    const child = postmaster;
    const pid = child?.process.pid;
    if (child === undefined || pid === undefined || !isRunning(child)) return;
    // Stopped, the postmaster cannot fork a backend between the listing and the kills.
    signal(pid, 'SIGSTOP');
    const giveUp = Date.now() + 5000;
    while (stateOf(pid) !== 'T' && stateOf(pid) !== null && Date.now() < giveUp) {
      // Spins for the microseconds the stop takes to land: the kills must follow at once.
    }
    // Only this cluster's processes: the children of the postmaster this trial started.
    for (const backend of childrenOf(pid)) signal(backend, 'SIGKILL');
    signal(pid, 'SIGKILL');
  };
  let removed: Promise<void> | undefined;
  const remove = () =>
    (removed ??= (async () => {
      // The folder goes next, so there is nothing to shut down cleanly for.
      crash();
      await postmaster?.exited;
      rmSync(dir, { recursive: true, force: true });
    })());
  try {
    // -N: initdb's own files need no fsync for a test; the server's fsync stays on below.
    // Trust: the cluster listens on loopback only, holds only this trial's test sessions and is
    // removed with it.
    await run(
      join(PG_BIN, 'initdb'),
      ['-D', data, '-U', 'postgres', '-A', 'trust', '-N', '--locale=C', '-E', 'UTF8'],
      { ...user, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' } },
    );
    const port = await freePort();
    const args = [
      '-D',
      data,
      '-p',
      String(port),
      // Loopback TCP only, no unix socket: nothing outside this machine reaches the cluster.
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      // The defaults, spelled out because they are what the trial is about.
      '-c',
      'fsync=on',
      '-c',
      'synchronous_commit=on',
      '-c',
      'full_page_writes=on',
      '-c',
      'max_connections=40',
    ];
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const accepting = async () => {
      const client = new pg.Client({ connectionString: url });
      // Errors while it starts up arrive as rejections of connect(), not as events.
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } finally {
        await client.end().catch(() => {});
      }
    };
    const start = async () => {
      postmaster = startChild(join(PG_BIN, 'postgres'), args, user);
      // After a crash the postmaster replays the WAL before it accepts connections.
      await waitReady(postmaster, `PostgreSQL on port ${port}`, accepting);
    };
    await start();
    return {
      serveArgs: ['--store', url],
      crash,
      restart: async () => {
        await postmaster?.exited;
        await start();
      },
      remove,
    };
  } catch (error) {
    await remove();
    throw error;
  }
}
