/**
 * sessiond's RESP port against Redis, with redis-benchmark, in one run (not a test).
 *
 *   node bench/resp.ts [requests]
 *
 * sessiond (SET, GET, INC of one session variable) and a private redis-server on a free
 * loopback port (HSET, HGET, HINCRBY of one hash field), 50 clients, without and with -P 16.
 * sessiond runs in this process over its memory store (the fair match for Redis, which keeps
 * nothing on disk here) and, as a second row, over its default SQLite store. A third server in
 * this process, the floor, does no command work at all: it counts frames and answers +OK to
 * each, so its figure is what Node's sockets allow here, the ceiling of any Node RESP server.
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
    `redis-benchmark, 50 clients, ${requests} requests per case, node ${process.version}`,
  );
  console.log(
    '| command | -P | redis rps | node floor rps | ratio | sessiond memory rps | ratio | sessiond sqlite rps | ratio |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const pipeline of [1, 16]) {
    for (const [name, ours, theirs] of pairs) {
      const base = await rps(anchor.port, pipeline, theirs);
      const ceiling = await rps(servers.floor.port, pipeline, ours);
      const memory = await rps(servers.memory.port, pipeline, ours);
      const sqlite = await rps(servers.sqlite.port, pipeline, ours);
      const f = (n: number) => Math.round(n).toLocaleString('en-US');
      console.log(
        `| ${name} | ${pipeline} | ${f(base)} | ${f(ceiling)} | ${(ceiling / base).toFixed(2)} | ${f(memory)} | ${(memory / base).toFixed(2)} | ${f(sqlite)} | ${(sqlite / base).toFixed(2)} |`,
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
