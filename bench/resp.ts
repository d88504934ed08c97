/**
 * sessiond's RESP port against Redis, with redis-benchmark, in one run (not a test).
 *
 *   node bench/resp.ts [requests] [rounds]
 *
 * sessiond (SET, GET, INC of one session variable) and a private redis-server on a free
 * loopback port (HSET, HGET, HINCRBY of one hash field), 50 clients, without and with -P 16.
 * sessiond runs in this process over its memory store (the fair match for Redis, which keeps
 * nothing on disk here) and, as a second row, over its default SQLite store. A third server in
 * this process, the floor, does no command work at all: it counts frames and answers +OK to
 * each, so its figure is what Node's sockets allow here, the ceiling of any Node RESP server.
 *
 * Each case runs `rounds` times (default 3), the four servers one after the other in each round,
 * and the table shows medians: the rps, and the ratio of each round's figure to Redis's in that
 * round. On a shared, noisy machine one short run can be off by a third; a ratio taken within a
 * round compares servers under the same conditions.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Engine } from '../src/core/engine.ts';
import { SessiondServer } from '../src/server/server.ts';
import { openStore } from '../src/store/open.ts';
import { startRedis } from './support.ts';

const requests = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 3);
const run = promisify(execFile);

/** Requests per second that redis-benchmark reports for one command. */
async function rps(port: number, pipeline: number, command: string[]): Promise<number> {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-c',
    '50',
    '-n',
    String(requests),
    '-P',
    String(pipeline),
    '--csv',
    ...command,
  ];
  const { stdout } = await run('redis-benchmark', args, { maxBuffer: 1 << 20 });
  const row = stdout.trim().split('\n').at(-1)!.split(',');
  return Number(JSON.parse(row[1]!));
}

async function sessiond(spec: string): Promise<{ port: number; close: () => Promise<void> }> {
  const engine = new Engine({ store: await openStore(spec), defaultTimeout: 3600 });
  const server = await SessiondServer.start({ engine, resp: { port: 0 }, http: false });
  await engine.create('bench-session');
  await engine.set('bench-session', 'counter', '0');
  return { port: server.respAddress.port, close: () => server.close() };
}

async function redis(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = await startRedis();
  await server.cli('HSET', 'bench-session', 'counter', '0');
  return { port: server.port, close: async () => server.stop() };
}

/** The floor: counts the frames of each read ('*' starts one; the benchmark's arguments have none). */
async function floor(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      let frames = 0;
      for (let at = chunk.indexOf(42); at !== -1; at = chunk.indexOf(42, at + 1)) frames++;
      if (frames > 0) socket.write('+OK\r\n'.repeat(frames));
    });
    socket.on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

const pairs: Array<[string, string[], string[]]> = [
  [
    'set',
    ['SET', 'bench-session', 'counter', 'value'],
    ['HSET', 'bench-session', 'counter', 'value'],
  ],
  ['get', ['GET', 'bench-session', 'counter'], ['HGET', 'bench-session', 'counter']],
  ['inc', ['INC', 'bench-session', 'n'], ['HINCRBY', 'bench-session', 'n', '1']],
];

const dir = mkdtempSync(join(tmpdir(), 'sessiond-bench-'));
const anchor = await redis();
const servers = {
  floor: await floor(),
  memory: await sessiond('memory'),
  sqlite: await sessiond(`sqlite:${join(dir, 'bench.db')}`),
};
try {
  console.log(
    `redis-benchmark, 50 clients, ${requests} requests per case, median of ${rounds} rounds, node ${process.version}`,
  );
  console.log(
    '| command | -P | redis rps | node floor rps | ratio | sessiond memory rps | ratio | sessiond sqlite rps | ratio |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const pipeline of [1, 16]) {
    for (const [name, ours, theirs] of pairs) {
      const runs: Array<[base: number, ceiling: number, memory: number, sqlite: number]> = [];
      for (let round = 0; round < rounds; round++) {
        runs.push([
          await rps(anchor.port, pipeline, theirs),
          await rps(servers.floor.port, pipeline, ours),
          await rps(servers.memory.port, pipeline, ours),
          await rps(servers.sqlite.port, pipeline, ours),
        ]);
      }
      const f = (column: number) => Math.round(median(runs.map((run) => run[column]!)));
      const ratio = (column: number) => median(runs.map((run) => run[column]! / run[0])).toFixed(2);
      const cells = [1, 2, 3].map((c) => `${f(c).toLocaleString('en-US')} | ${ratio(c)}`);
      console.log(
        `| ${name} | ${pipeline} | ${f(0).toLocaleString('en-US')} | ${cells.join(' | ')} |`,
      );
    }
  }
} finally {
  await servers.floor.close();
  await servers.memory.close();
  await servers.sqlite.close();
  await anchor.close();
  rmSync(dir, { recursive: true, force: true });
}
