/**
 * Engine throughput on each embedded store (not a test).
 *
 *   node bench/engine.ts [seconds-per-case]
 *
 * For the memory and sqlite stores: GET, SET and INC of one variable over 10,000 sessions,
 * 64 operations in flight (as a server with many clients would issue them). For sqlite also
 * durable acknowledged writes/s: SET with 256 writers in flight, each counted only once its
 * promise resolved, which the store does after the group commit that holds the write.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../src/core/engine.ts';
import { MemoryStore } from '../src/store/memory/memory-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/types.ts';

const seconds = Number(process.argv[2] ?? 3);
const SESSIONS = 10_000;

/** Runs `op` with `inFlight` callers until `seconds` pass; operations per second. */
async function rate(inFlight: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, worker) => {
      for (let i = worker; performance.now() < end; i += inFlight) {
        await op(i);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

async function bench(label: string, store: Store, durable: boolean): Promise<void> {
  const engine = new Engine({ store, defaultTimeout: 3600 });
  const ids = Array.from({ length: SESSIONS }, (_, i) => `bench-session-${i}`);
  for (const id of ids) await engine.create(id);
  await Promise.all(ids.map((id) => engine.set(id, 'n', '0')));
  const pick = (i: number) => ids[(i * 7919) % SESSIONS]!;
  const results: Record<string, number> = {
    get: await rate(64, (i) => engine.get(pick(i), 'n')),
    set: await rate(64, (i) => engine.set(pick(i), 'v', String(i))),
    inc: await rate(64, (i) => engine.inc(pick(i), 'n')),
  };
  if (durable)
    results['durable set, 256 writers'] = await rate(256, (i) =>
      engine.set(pick(i), 'v', String(i)),
    );
  for (const [op, perSecond] of Object.entries(results)) {
    console.log(
      `${label.padEnd(22)} ${op.padEnd(26)} ${Math.round(perSecond).toLocaleString('en-US').padStart(10)} ops/s`,
    );
  }
  await engine.close();
}

const dir = mkdtempSync(join(tmpdir(), 'sessiond-bench-'));
try {
  console.log(`node ${process.version}, ${seconds} s per case, ${SESSIONS} sessions`);
  await bench('memory', new MemoryStore(), false);
  await bench(
    'sqlite (full)',
    await SqliteStore.open({ path: join(dir, 'full.db'), durability: 'full' }),
    true,
  );
  await bench(
    'sqlite (normal)',
    await SqliteStore.open({ path: join(dir, 'normal.db'), durability: 'normal' }),
    true,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
