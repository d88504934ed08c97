/**
 * Many concurrent clients against each store, every operation recorded with its invocation and
 * completion on one monotonic clock, then the whole history checked (lock-checker.ts,
 * counter-checker.ts): LOCK holders never overlap, fencing keys rise with each grant, no update
 * made under the lock is lost, every INC is counted once and every GET is linearizable.
 *
 * Run: node --test test/history/histories.test.ts (longer: node scripts/history.ts 60)
 *
 * One server over memory and over SQLite; two servers over a shared PostgreSQL, a shared Redis
 * and a Redis Cluster of three masters, the clients split between them. The shared backends
 * need what test/multi-server needs: PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379
 * (or SESSIOND_TEST_PG and SESSIOND_TEST_REDIS_URL), and redis-server and redis-cli on PATH.
 *
 * Last, one server over a store with planted bugs (flawed-store.ts): the same runs must make the
 * checkers report them. The runs assert what the checkers find, never how long anything took.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import type { SessiondClient } from '../../src/client/client.ts';
import { checkCounters } from './counter-checker.ts';
import { History, operations, type Operation } from './history.ts';
import { checkLocks } from './lock-checker.ts';
import {
  startFlawedTarget,
  startTarget,
  TARGET_KINDS,
  type Target,
  type TargetKind,
} from './targets.ts';
import { runCounters, runLocks } from './workloads.ts';

const CLIENTS = 24;
const DESCRIBED: Record<TargetKind, string> = {
  memory: 'one server over memory',
  sqlite: 'one server over SQLite',
  postgres: 'two servers over one PostgreSQL',
  redis: 'two servers over one Redis',
  'redis-cluster': 'two servers over a Redis Cluster of three masters',
};
/** Printed with every run: the clients' choices follow from it (their timing does not). */
const SEED = Number(process.env['SESSIOND_HISTORY_SEED'] ?? randomBytes(4).readUInt32LE());

for (const kind of TARGET_KINDS) {
  describe(`the history of ${CLIENTS} clients of ${DESCRIBED[kind]}`, () => {
    let target: Target | undefined;
    let clients: SessiondClient[] = [];
    const tag = `hist-${randomBytes(4).toString('hex')}-`;

    before(async () => {
      target = await startTarget(kind);
      clients = await target.clients(CLIENTS);
    });

    after(() => target?.close());

    afterEach(() => {
      // Store failures and bugs are reported here rather than to any client.
      assert.deepEqual(target?.problems.splice(0), []);
    });

    it('shows LOCK holders that never overlap, fencing keys rising with each grant, and no update lost', async (t) => {
      const sids = [`${tag}lock-a`, `${tag}lock-b`];
      for (const sid of sids) await clients[0]!.create(sid, { timeout: 0 });
      const history = new History();
      // The lease outlasts the run, and the WAIT any queue: only UNLOCK frees a lock.
      await runLocks(history, clients, {
        sids,
        rounds: 5,
        leaseMs: 120_000,
        waitMs: 60_000,
        seed: SEED,
      });
      const ops = operations(history.events);
      const report = checkLocks(ops);
      t.diagnostic(
        `seed ${SEED}: ${ops.length} ops, ${report.grants} holders, ${report.completed} updates, ${report.refused} LOCKED, ${report.violations.length} violations`,
      );
      assert.deepEqual(report.violations, []);
      assert.deepEqual(report.leaseLost, [], 'every UNLOCK found its lock still held');
      assert.equal(report.unknown, 0);
      assert.equal(report.grants, CLIENTS * 5);
      assert.equal(report.completed, report.grants, 'every holder updated the register');
      assert.equal(report.finalReads, sids.length);

      // The same history with one holder's grant moved back into its predecessor's turn.
      const [first, second] = ops
        .filter((op) => op.call.f === 'lock' && op.call.sid === sids[0] && op.outcome === 'ok')
        .sort((a, b) => Number(a.value) - Number(b.value));
      assert.ok(first && second);
      const moved = ops.map((op) =>
        op === second ? { ...op, completedAt: first.completedAt + 1n } : op,
      );
      assert.ok(checkLocks(moved).violations.some((v) => v.kind === 'overlap'));
    });

    it('shows a lock passed on only once its lease has run out, to a holder with a higher key', async (t) => {
      const sids = [`${tag}lease-a`, `${tag}lease-b`];
      for (const sid of sids) await clients[0]!.create(sid, { timeout: 0 });
      const history = new History();
      // A lease long enough for a section on a loaded machine, short enough to outwait often;
      // no WAIT, so that each lease is known to start within a round trip of its LOCK.
      const { overstays } = await runLocks(history, clients.slice(0, 12), {
        sids,
        rounds: 2,
        leaseMs: 300,
        waitMs: 0,
        seed: SEED,
        overstay: 0.25,
      });
      const ops = operations(history.events);
      const report = checkLocks(ops);
      t.diagnostic(
        `seed ${SEED}: ${ops.length} ops, ${report.grants} holders, ${report.refused} LOCKED, ${overstays} overstayed, ${report.leaseLost.length} leases lost, ${report.unprotected} late writes, ${report.violations.length} violations`,
      );
      assert.deepEqual(report.violations, []);
      // Each holder that slept past its lease found it gone; a stalled machine may add more.
      assert.ok(report.leaseLost.length >= overstays);
    });

    it('shows every INC counted once and every GET in real-time order', async (t) => {
      const counters: Array<[string, string]> = [
        [`${tag}count-a`, 'hits'],
        [`${tag}count-a`, 'misses'],
        [`${tag}count-b`, 'hits'],
        [`${tag}count-c`, 'hits'],
      ];
      for (const sid of new Set(counters.map(([sid]) => sid))) {
        await clients[0]!.create(sid, { timeout: 0 });
      }
      const history = new History();
      await runCounters(history, clients, { counters, ops: 125, incShare: 0.7, seed: SEED });
      const ops = operations(history.events);
      const report = checkCounters(ops);
      t.diagnostic(
        `seed ${SEED}: ${ops.length} ops, ${report.incs} INCs (${report.unknownIncs} unknown), ${report.reads} GETs, ${report.violations.length} violations`,
      );
      assert.deepEqual(report.violations, []);
      assert.equal(report.counters, counters.length);
      assert.equal(report.unknownIncs, 0);
      assert.equal(report.incs + report.reads, CLIENTS * 125 + counters.length);

      // The same history with one INC's reply given to a second INC.
      const incs = ops.filter(
        (op) =>
          op.call.f === 'inc' &&
          op.call.sid === counters[0]![0] &&
          op.call.name === counters[0]![1] &&
          op.outcome === 'ok',
      );
      const doubled: Operation[] = ops.map((op) =>
        op === incs[1] ? { ...op, value: incs[0]!.value! } : op,
      );
      assert.ok(checkCounters(doubled).violations.some((v) => v.kind === 'duplicate-inc'));
    });
  });
}

describe('the history of clients of a server whose store has planted bugs', () => {
  let target: Target | undefined;
  let clients: SessiondClient[] = [];

  before(async () => {
    target = await startFlawedTarget();
    clients = await target.clients(8);
  });

  after(() => target?.close());

  it('shows the LOCK that grants every caller as overlapping holders and lost updates', async () => {
    await clients[0]!.create('flawed-lock', { timeout: 0 });
    const history = new History();
    await runLocks(history, clients, {
      sids: ['flawed-lock'],
      rounds: 3,
      leaseMs: 120_000,
      waitMs: 0,
      seed: SEED,
    });
    const found = new Set(checkLocks(operations(history.events)).violations.map((v) => v.kind));
    assert.ok(found.has('overlap') && found.has('lost-update'), [...found].join(' '));
  });

  it('shows the INC that reads, yields and writes as INCs counted twice or not at all', async () => {
    await clients[0]!.create('flawed-count', { timeout: 0 });
    const history = new History();
    await runCounters(history, clients, {
      counters: [['flawed-count', 'n']],
      ops: 20,
      incShare: 1,
      seed: SEED,
    });
    const found = new Set(checkCounters(operations(history.events)).violations.map((v) => v.kind));
    assert.ok(found.has('duplicate-inc') && found.has('final-count'), [...found].join(' '));
  });
});
