/**
 * Memory used by 1,000,000 live sessions of 3 variables (not a test), side by side with its
 * anchors in one run: a naive Map of Maps in the same process, and Redis holding the same data
 * as hashes (a private redis-server on a free loopback port, when one is installed).
 *
 *   node --expose-gc bench/memory.ts [sessions]
 *
 * Reports V8 heap plus array buffers (the store's typed-array columns live outside the heap),
 * measured after full GCs; for Redis, the growth of INFO's used_memory.
 */
import { spawnSync } from 'node:child_process';
import { Engine } from '../src/core/engine.ts';
import { MemoryStore } from '../src/store/memory/memory-store.ts';
import { startRedis } from './support.ts';

const sessions = Number(process.argv[2] ?? 1_000_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const row = (i: number): Array<[string, string]> => [
  ['user', `user${i}`],
  ['visits', String(i % 1000)],
  ['page', `/products/${i % 5000}`],
];

function used(): number {
  gc!();
  gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function measureSessiond(): Promise<number> {
  const before = used();
  const engine = new Engine({ store: new MemoryStore(), defaultTimeout: 3600 });
  for (let i = 0; i < sessions; i++) {
    const id = engine.newId();
    await engine.create(id);
    await engine.setMany(id, row(i));
  }
  const bytes = used() - before;
  if ((await engine.count()) !== sessions) throw new Error('lost sessions');
  await engine.close();
  return bytes;
}

function measureNaiveMap(): number {
  const before = used();
  const map = new Map<string, Map<string, string>>();
  const engine = new Engine({ store: new MemoryStore() });
  for (let i = 0; i < sessions; i++) map.set(engine.newId(), new Map(row(i)));
  const bytes = used() - before;
  if (map.size !== sessions) throw new Error('lost sessions');
  return bytes;
}

async function measureRedis(): Promise<number | null> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null;
  const redis = await startRedis();
  try {
    const memory = async () =>
      Number(/used_memory:(\d+)/.exec(await redis.cli('info', 'memory'))![1]);
    const before = await memory();
    const engine = new Engine({ store: new MemoryStore() });
    const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
    const chunks: string[] = [];
    for (let i = 0; i < sessions; i++) {
      const args = ['HSET', engine.newId(), ...row(i).flat()];
      chunks.push(`*${args.length}\r\n${args.map(bulk).join('')}`);
    }
    const loaded = spawnSync('redis-cli', ['-p', String(redis.port), '--pipe'], {
      input: chunks.join(''),
      maxBuffer: 1 << 30,
    });
    if (loaded.status !== 0) throw new Error(`redis-cli --pipe failed: ${String(loaded.stderr)}`);
    if (Number(await redis.cli('dbsize')) !== sessions) throw new Error('redis lost sessions');
    return (await memory()) - before;
  } finally {
    redis.stop();
  }
}

const sessiond = await measureSessiond();
const naive = measureNaiveMap();
const redis = await measureRedis();
const mb = (bytes: number) => Number((bytes / 1e6).toFixed(1));
console.log(`sessions: ${sessions} of 3 variables, node ${process.version}`);
console.log(
  `sessiond memory store: ${mb(sessiond)} MB (${Math.round(sessiond / sessions)} B/session)`,
);
console.log(
  `naive Map of Maps:     ${mb(naive)} MB (sessiond/naive ${(sessiond / naive).toFixed(2)})`,
);
if (redis !== null)
  console.log(
    `redis hashes:          ${mb(redis)} MB (sessiond/redis ${(sessiond / redis).toFixed(2)})`,
  );
