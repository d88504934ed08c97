/**
 * Crash durability, the short version of `node scripts/crash.ts` (docs/durability.md): for each
 * durable store setting, two rounds of write load, SIGKILL at a random moment, restart and
 * check; and two controls that must lose writes, which show the checker can fail.
 *
 * Run: node --test test/crash/
 *
 * Needs the machine's PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres, or
 * SESSIOND_TEST_PG), and redis-server and redis-cli on PATH for the private Redis each Redis
 * case starts. The private PostgreSQL cluster case runs only as root with PostgreSQL 15's server
 * binaries. Every case works in a folder, database or server of its own, removed at the end.
 * The kill moments come from a seed printed on failure; SESSIOND_CRASH_SEED repeats a run.
 * Nothing asserts how long anything took.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTrial, type TrialOptions, type TrialResult } from './crash-harness.ts';
import { TARGETS, defaultTargets } from './targets.ts';

const seed = Number(process.env['SESSIOND_CRASH_SEED'] ?? Date.now() % 2 ** 31);

/** A light load: the machine may be running other test files on its two CPUs. */
const SHORT: Omit<TrialOptions, 'kills'> = {
  writers: 8,
  minWritesBeforeKill: 50,
  maxKillDelayMs: 500,
  seed,
};

function report(result: TrialResult): string {
  return `seed ${seed}: ${JSON.stringify(result, null, 2)}`;
}

describe('a sessiond killed with SIGKILL mid-load keeps every acknowledged write', () => {
  const durable = ['sqlite', 'sqlite-normal', 'postgres', 'postgres-cluster', 'redis'];
  for (const name of durable) {
    const target = TARGETS[name]!;
    const skip =
      name === 'postgres-cluster' && !defaultTargets().includes(name)
        ? 'needs root and PostgreSQL 15 server binaries'
        : false;
    it(`over ${target.setting}, killing ${target.killed}`, { skip }, async () => {
      const result = await runTrial(target, { ...SHORT, kills: 2 });
      assert.equal(result.kills, 2, report(result));
      assert.ok(result.acknowledged > 0, report(result));
      assert.deepEqual(result.unexpected, [], report(result));
      assert.equal(result.lost, 0, report(result));
      assert.equal(result.phantom, 0, report(result));
    });
  }
});

describe('the checker reports the losses of a store that keeps nothing', () => {
  it('finds every acknowledged write missing after the memory store restarts', async () => {
    const result = await runTrial(TARGETS['memory']!, { ...SHORT, kills: 1 });
    assert.deepEqual(result.unexpected, [], report(result));
    assert.ok(result.acknowledged > 0, report(result));
    assert.equal(result.lost, result.acknowledged, report(result));
    assert.equal(result.sessions, 0, report(result));
  });

  it('finds writes missing when a Redis without an append-only file is killed', async () => {
    const result = await runTrial(TARGETS['redis-rdb']!, { ...SHORT, kills: 1 });
    assert.deepEqual(result.unexpected, [], report(result));
    assert.ok(result.lost > 0, report(result));
  });
});
