/**
 * A throwaway Redis Cluster for tests: real redis-server processes on loopback ports, joined
 * with `redis-cli --cluster create`, removed (processes and files) by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running test cluster. */
export interface RedisClusterHarness {
  /** The masters' ports, in start order. */
  readonly ports: readonly number[];
  /** `redis://127.0.0.1:<port>` of every master: what `createCluster` and RedisStore take. */
  readonly rootNodes: readonly string[];
  /** Stops every node and removes the temporary directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterHarnessOptions {
  /** How many masters; at least 3, as `redis-cli --cluster create` requires. Default 3. */
  masters?: number;
  /** redis-server and redis-cli to run; default the ones on PATH. */
  redisServer?: string;
  redisCli?: string;
  /** How long to wait for the cluster to agree, in ms; default 30000. */
  readyTimeoutMs?: number;
}

const POLL_MS = 50;

/**
 * Starts `masters` redis-server processes with cluster mode on free loopback ports (no
 * persistence), assigns every slot with `redis-cli --cluster create`, and resolves once every
 * node reports `cluster_state:ok`. On failure it stops what it started and rejects.
 * @example
 * const cluster = await startRedisCluster();
 * after(() => cluster.stop());
 * const store = await RedisStore.open({ cluster: { rootNodes: [...cluster.rootNodes] } });
 */
export async function startRedisCluster(
  options: RedisClusterHarnessOptions = {},
): Promise<RedisClusterHarness> {
  const masters = options.masters ?? 3;
  if (!Number.isSafeInteger(masters) || masters < 3) {
    throw new RangeError('a Redis Cluster needs at least 3 masters');
  }
  const server = options.redisServer ?? 'redis-server';
  const cli = options.redisCli ?? 'redis-cli';
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  const dir = mkdtempSync(join(tmpdir(), 'sessiond-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const used: number[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      await Promise.all(children.map(stopChild));
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    for (let i = 0; i < masters; i++) {
      const [port, busPort] = await freePorts(2, used);
      used.push(port!, busPort!);
      ports.push(port!);
      const child = spawn(
        server,
        [
          '--port',
          String(port),
          '--cluster-port',
          String(busPort),
          // Loopback only: a test cluster has no password and must not be reachable from outside.
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '5000',
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
          '--logfile',
          join(dir, `redis-${port}.log`),
        ],
        { stdio: 'ignore' },
      );
      children.push(child);
    }
    for (const port of ports) await waitFor(() => ping(port), deadline, `node ${port} to start`);
    await run(cli, [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    for (const port of ports) {
      await waitFor(
        async () => (await command(port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok'),
        deadline,
        `node ${port} to report cluster_state:ok`,
      );
    }
    // Every node must also know every other one, or a client's first topology may be partial.
    for (const port of ports) {
      await waitFor(
        async () =>
          (await command(port, ['CLUSTER', 'NODES']))
            .split('\n')
            .filter((l) => l.includes('master')).length === masters,
        deadline,
        `node ${port} to see every master`,
      );
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return { ports, rootNodes: ports.map((port) => `redis://127.0.0.1:${port}`), stop };
}

/** `count` distinct free loopback ports, none of them in `taken`. */
async function freePorts(count: number, taken: readonly number[]): Promise<number[]> {
  const found: number[] = [];
  while (found.length < count) {
    const port = await new Promise<number>((resolve, reject) => {
      const probe = createServer();
      probe.once('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    if (port > 0 && !taken.includes(port) && !found.includes(port)) found.push(port);
  }
  return found;
}

async function waitFor(check: () => Promise<boolean>, deadline: number, what: string) {
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`redis cluster harness: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function ping(port: number): Promise<boolean> {
  return (await command(port, ['PING'])) === 'PONG';
}

/** Sends one command over a fresh connection; the reply as text (bulk, simple or error). */
function command(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = '';
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(2000, () => fail(new Error('timeout')));
    socket.once('error', fail);
    socket.connect(port, '127.0.0.1', () => {
      socket.write(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`);
    });
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      const text = parseReply(reply);
      if (text !== undefined) {
        socket.destroy();
        resolve(text);
      }
    });
  });
}

/** The text of a complete simple, error or bulk reply; undefined while it is incomplete. */
function parseReply(raw: string): string | undefined {
  const eol = raw.indexOf('\r\n');
  if (eol < 0) return undefined;
  if (raw[0] === '+' || raw[0] === '-') return raw.slice(1, eol);
  if (raw[0] !== '$') return raw.slice(0, eol);
  const length = Number(raw.slice(1, eol));
  if (raw.length < eol + 2 + length) return undefined;
  return raw.slice(eol + 2, eol + 2 + length);
}

function run(file: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`${file} ${args.join(' ')} exited with ${code}:\n${output}`)),
    );
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
