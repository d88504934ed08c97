/**
 * The checkers against hand-made histories: clean ones pass, and each kind of bad one (two
 * holders at once, a fencing key going back, a lost lease, a lost update, an INC counted twice,
 * a stale read...) is reported. A checker that cannot fail proves nothing.
 *
 * Times are written in milliseconds: [invoked, completed].
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessiondError } from '../../src/errors.ts';
import { checkCounters } from './counter-checker.ts';
import { History, operations, type Call, type Operation, type Value } from './history.ts';
import { checkLocks } from './lock-checker.ts';

const ns = (ms: number) => BigInt(Math.round(ms * 1e6));

function ok(process: number, call: Call, [from, to]: [number, number], value: Value): Operation {
  return { process, call, invokedAt: ns(from), completedAt: ns(to), outcome: 'ok', value };
}

function unknown(process: number, call: Call, [from, to]: [number, number]): Operation {
  return { process, call, invokedAt: ns(from), completedAt: ns(to), outcome: 'unknown' };
}

/** The ops in invocation order, as {@link operations} gives them. */
const history = (...ops: Operation[]) => ops.sort((a, b) => Number(a.invokedAt - b.invokedAt));

const kinds = (report: { violations: Array<{ kind: string }> }) =>
  [...new Set(report.violations.map((v) => v.kind))].sort();

const lock = (sid = 's', leaseMs = 30_000): Call => ({ f: 'lock', sid, leaseMs, waitMs: 1000 });
const unlock = (key: number, sid = 's'): Call => ({ f: 'unlock', sid, key });
const get = (name = 'x', sid = 's'): Call => ({ f: 'get', sid, name });
const set = (value: string, name = 'x', sid = 's'): Call => ({ f: 'set', sid, name, value });
const inc = (name = 'x', sid = 's'): Call => ({ f: 'inc', sid, name });

/** A whole critical section of `process`: LOCK, GET x, SET x, UNLOCK, from `t` to `t` + 4. */
function section(process: number, t: number, key: number, read: string | null): Operation[] {
  const next = String(Number(read ?? 0) + 1);
  return [
    ok(process, lock(), [t - 1, t], key),
    ok(process, get(), [t + 1, t + 1.5], read),
    ok(process, set(next), [t + 2, t + 2.5], true),
    ok(process, unlock(key), [t + 3, t + 4], true),
  ];
}

describe('the lock checker', () => {
  it('passes holders that take turns, with rising keys and every update kept', () => {
    const report = checkLocks(
      history(
        ...section(1, 1, 1, null),
        ...section(2, 10, 2, '1'),
        ...section(1, 20, 5, '2'),
        ok(3, get(), [30, 31], '3'),
      ),
    );
    assert.deepEqual(report.violations, []);
    assert.equal(report.grants, 3);
    assert.equal(report.completed, 3);
    assert.equal(report.finalReads, 1);
  });

  it('accepts either value after a write whose outcome is unknown', () => {
    const [l, g, , u] = section(1, 1, 1, null);
    const report = checkLocks(
      history(l!, g!, unknown(1, set('1'), [3, 3.5]), u!, ...section(2, 10, 2, '0')),
    );
    assert.deepEqual(report.violations, []);
  });

  it('reports two holders at once, and the update one of them lost', () => {
    // Process 2's LOCK returned while process 1 had not yet begun its UNLOCK.
    const report = checkLocks(history(...section(1, 1, 1, null), ...section(2, 2, 2, null)));
    assert.deepEqual(kinds(report), ['lost-update', 'overlap']);
  });

  it('reports a fencing key that does not rise in the order of grants', () => {
    const report = checkLocks(history(...section(1, 1, 7, null), ...section(2, 10, 3, '1')));
    assert.deepEqual(kinds(report), ['key-order', 'lost-update']);
  });

  it('reports a fencing key given twice', () => {
    const report = checkLocks(history(...section(1, 1, 4, null), ...section(2, 10, 4, '1')));
    assert.ok(kinds(report).includes('duplicate-key'), JSON.stringify(report.violations));
  });

  it('lists an UNLOCK that answered 0, and reports it when the lease cannot have run out', () => {
    const early = checkLocks(
      history(ok(1, lock('s', 100), [0, 1], 1), ok(1, unlock(1), [10, 11], false)),
    );
    assert.equal(early.leaseLost.length, 1);
    assert.deepEqual(kinds(early), ['lease-lost-early']);

    // Held past its 100 ms lease: the lock was rightly taken back, so it is listed, not a fault.
    const late = checkLocks(
      history(
        ok(1, lock('s', 100), [0, 1], 1),
        ok(2, lock('s', 100), [50, 120], 2),
        ok(2, unlock(2), [130, 131], true),
        ok(1, unlock(1), [150, 151], false),
      ),
    );
    assert.equal(late.leaseLost.length, 1);
    assert.deepEqual(late.violations, []);
  });

  it('stops checking a variable once a write landed after its lease could have run out', () => {
    // Process 1 wrote 1 long after its 100 ms lease; process 2, holding the lock by then, read
    // 0 and wrote 1 as well. Unprotected by the lock, the late write proves nothing.
    const report = checkLocks(
      history(
        ok(1, lock('s', 100), [0, 1], 1),
        ok(1, get(), [2, 3], null),
        ok(2, lock('s', 1000), [5, 110], 2),
        ok(2, get(), [111, 112], null),
        ok(2, set('1'), [113, 114], true),
        ok(2, unlock(2), [115, 116], true),
        ok(1, set('1'), [140, 150], true),
        ok(1, unlock(1), [151, 152], false),
        ok(3, get(), [160, 161], '1'),
      ),
    );
    assert.deepEqual(report.violations, []);
    assert.deepEqual([report.unprotected, report.leaseLost.length], [1, 1]);
  });

  it('reports a final value other than the number of completed sections', () => {
    const report = checkLocks(
      history(...section(1, 1, 1, null), ...section(2, 10, 2, '1'), ok(3, get(), [30, 31], '1')),
    );
    assert.deepEqual(kinds(report), ['lost-update']);
    assert.match(report.violations[0]!.message, /x is 1, but .* left 2/);
  });

  it('checks each session on its own', () => {
    const other = (op: Operation): Operation => ({ ...op, call: { ...op.call, sid: 't' } });
    const report = checkLocks(
      history(...section(1, 1, 1, null), ...section(2, 2, 1, null).map(other)),
    );
    assert.deepEqual(report.violations, []);
  });
});

describe('the counter checker', () => {
  it('passes concurrent INCs in any order among themselves, and reads between them', () => {
    const report = checkCounters(
      history(
        ok(1, get(), [0, 1], null),
        ok(1, inc(), [2, 10], 2),
        ok(2, inc(), [3, 9], 1),
        ok(3, get(), [4, 5], '1'),
        ok(3, inc(), [6, 12], 3),
        ok(4, get(), [11, 13], '2'),
        ok(4, get(), [14, 15], '3'),
      ),
    );
    assert.deepEqual(report.violations, []);
    assert.deepEqual([report.counters, report.incs, report.reads], [1, 3, 4]);
  });

  it('reports two INCs that returned the same value, and the total they leave', () => {
    const report = checkCounters(
      history(ok(1, inc(), [0, 2], 1), ok(2, inc(), [1, 3], 1), ok(3, get(), [4, 5], '1')),
    );
    assert.deepEqual(kinds(report), ['duplicate-inc', 'final-count']);
  });

  it('reports a read that began after an INC completed and missed it', () => {
    const report = checkCounters(history(ok(1, inc(), [0, 1], 1), ok(2, get(), [2, 3], '0')));
    assert.deepEqual(kinds(report), ['final-count', 'stale-read']);
  });

  it('reports reads going backwards while an INC is in flight', () => {
    const report = checkCounters(
      history(ok(1, inc(), [0, 10], 1), ok(2, get(), [1, 2], '1'), ok(3, get(), [3, 4], '0')),
    );
    assert.deepEqual(kinds(report), ['non-monotonic-read']);
  });

  it('reports an INC that returned less than one completed before it began', () => {
    const report = checkCounters(history(ok(1, inc(), [0, 1], 2), ok(2, inc(), [2, 3], 1)));
    assert.deepEqual(kinds(report), ['impossible-value', 'inc-order']);
  });

  it('reports a read of an INC that had not yet been invoked', () => {
    const report = checkCounters(history(ok(1, get(), [0, 1], '1'), ok(2, inc(), [2, 3], 1)));
    assert.deepEqual(kinds(report), ['impossible-value', 'inc-order']);
  });

  it('bounds the total by the unknown INCs, which may or may not have counted', () => {
    const run = (total: string) =>
      checkCounters(
        history(
          ok(1, inc(), [0, 1], 1),
          unknown(2, inc(), [0, 5]),
          ok(3, inc(), [2, 3], 2),
          ok(1, get(), [6, 7], total),
        ),
      );
    assert.deepEqual(run('2').violations, []);
    assert.deepEqual(run('3').violations, []);
    assert.deepEqual(kinds(run('4')), ['final-count', 'impossible-value']);
    assert.deepEqual(kinds(run('1')), ['final-count', 'stale-read']);
  });

  it('reports a history that passes every pairwise rule yet has no linearization', () => {
    // 1 and 3 were made by the unknown INCs, invoked at 0 and 5: the earliest gives 1, so 3
    // came from the one invoked at 5, after the read of 3 had completed.
    const report = checkCounters(
      history(
        ok(1, inc(), [0, 3], 2),
        ok(2, inc(), [0, 10], 4),
        unknown(3, inc(), [0, 20]),
        unknown(4, inc(), [5, 20]),
        ok(5, get(), [4, 4.5], '3'),
      ),
    );
    assert.deepEqual(kinds(report), ['not-linearizable']);
  });

  it('leaves alone variables that are SET, and checks each counter on its own', () => {
    const report = checkCounters(
      history(
        ok(1, inc('a'), [0, 1], 1),
        ok(1, inc('b'), [2, 3], 1),
        ok(2, set('5', 'c'), [0, 1], true),
        ok(2, inc('c'), [2, 3], 6),
        ok(3, get('a'), [4, 5], '1'),
      ),
    );
    assert.deepEqual(report.violations, []);
    assert.equal(report.counters, 2);
  });
});

describe('the history', () => {
  it('records replies as ok, error replies as fail and lost replies as unknown', async () => {
    const recorded = new History();
    const call = inc();
    const a = await recorded.run(1, call, async () => 1);
    const b = await recorded.run(2, call, () =>
      Promise.reject(new SessiondError('LOCKED', 'held')),
    );
    const c = await recorded.run(3, call, () => Promise.reject(new Error('timed out')));
    assert.deepEqual(
      [a, b, c].map((op) => [op.outcome, op.value]),
      [
        ['ok', 1],
        ['fail', undefined],
        ['unknown', undefined],
      ],
    );
    assert.deepEqual([b.error, c.error], ['LOCKED held', 'timed out']);
    assert.ok(a.invokedAt < a.completedAt && a.completedAt < b.invokedAt);
    assert.deepEqual(operations(recorded.events), [a, b, c]);
  });

  it('refuses a second operation of a busy process', async () => {
    const recorded = new History();
    const first = recorded.run(
      1,
      get(),
      () => new Promise((resolve) => setImmediate(resolve, '0')),
    );
    await assert.rejects(
      recorded.run(1, get(), async () => '0'),
      /already busy/,
    );
    await first;
  });

  it('pairs events by process, and counts an invocation never completed as unknown', () => {
    const events = [
      { type: 'invoke', process: 1, time: 1n, call: get() },
      { type: 'invoke', process: 2, time: 2n, call: inc() },
      { type: 'ok', process: 1, time: 3n, value: '0' },
      { type: 'invoke', process: 1, time: 4n, call: inc() },
      { type: 'ok', process: 1, time: 5n, value: 1 },
    ] as const;
    assert.deepEqual(
      operations(events).map((op) => [op.process, op.call.f, op.outcome, op.completedAt]),
      [
        [1, 'get', 'ok', 3n],
        [2, 'inc', 'unknown', 5n],
        [1, 'inc', 'ok', 5n],
      ],
    );
  });
});
