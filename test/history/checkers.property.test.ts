/**
 * The checkers never accuse a correct system: histories generated from a simulated atomic
 * counter and a simulated leased lock, each operation taking effect at one instant between its
 * invocation and completion, pass with no violation whatever the timing (fast-check). This is
 * what lets a real run's violation be trusted as a finding rather than a checker's artefact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { checkCounters } from './counter-checker.ts';
import type { Operation, Value } from './history.ts';
import { checkLocks } from './lock-checker.ts';

const ns = (ms: number) => BigInt(ms) * 1_000_000n;
const byInvocation = (ops: Operation[]) =>
  ops.sort((a, b) => (a.invokedAt < b.invokedAt ? -1 : a.invokedAt > b.invokedAt ? 1 : 0));

/** One client operation on the simulated counter. */
const counterOp = fc.record({
  kind: fc.constantFrom('inc', 'inc', 'get', 'unknown-applied', 'unknown-lost'),
  // Milliseconds from invocation to the instant it takes effect, and from there to the reply.
  before: fc.nat(40),
  after: fc.nat(40),
});

/** One critical section of the simulated lock, as gaps in milliseconds between its steps. */
const lockSection = fc.record({
  sid: fc.constantFrom('a', 'b'),
  waited: fc.nat(60),
  steps: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 9, maxLength: 9 }),
  keyStep: fc.integer({ min: 1, max: 3 }),
  overstay: fc.boolean(),
});

describe('the checkers on correct histories', () => {
  it('find nothing wrong with a linearizable counter, whatever the overlaps', () => {
    fc.assert(
      fc.property(fc.array(counterOp, { maxLength: 60 }), (plan) => {
        const ops: Operation[] = [];
        let value = 0;
        plan.forEach(({ kind, before, after }, i) => {
          // Effects 10 ms apart, in plan order: the order the counter applied them.
          const at = 100 + i * 10;
          const call =
            kind === 'get'
              ? { f: 'get' as const, sid: 's', name: 'n' }
              : { f: 'inc' as const, sid: 's', name: 'n' };
          const times = { process: i, invokedAt: ns(at - before), completedAt: ns(at + after) };
          if (kind === 'get') {
            ops.push({ ...times, call, outcome: 'ok', value: value === 0 ? null : String(value) });
            return;
          }
          if (kind !== 'unknown-lost') value++;
          if (kind === 'inc') ops.push({ ...times, call, outcome: 'ok', value });
          else ops.push({ ...times, call, outcome: 'unknown' });
        });
        const end = 100 + plan.length * 10 + 100;
        ops.push({
          process: plan.length,
          call: { f: 'get', sid: 's', name: 'n' },
          invokedAt: ns(end),
          completedAt: ns(end + 1),
          outcome: 'ok',
          value: String(value),
        });
        assert.deepEqual(checkCounters(byInvocation(ops)).violations, []);
      }),
      { numRuns: 500 },
    );
  });

  it('find nothing wrong with a lock that grants after each release or lease end', () => {
    const LEASE = 100;
    fc.assert(
      fc.property(fc.array(lockSection, { maxLength: 30 }), (plan) => {
        const ops: Operation[] = [];
        const free = new Map<string, { at: number; key: number; value: number }>();
        plan.forEach(({ sid, waited, steps, keyStep, overstay }, process) => {
          const [d1, d2, d3, d4, d5, d6, d7, d8, d9] = steps as [number, ...number[]];
          const state = free.get(sid) ?? { at: 0, key: 0, value: 0 };
          // Granted once the lock is free, to a LOCK that may have waited for it.
          const grant = state.at + d9!;
          const key = state.key + keyStep;
          const leaseMs = LEASE;
          const op = (call: Operation['call'], from: number, to: number, value: Value) =>
            ops.push({
              process,
              call,
              invokedAt: ns(from),
              completedAt: ns(to),
              outcome: 'ok',
              value,
            });
          const locked = grant + d1;
          op({ f: 'lock', sid, leaseMs, waitMs: 1000 }, grant - waited, locked, key);
          if (overstay) {
            // Nothing done: the lease ends LEASE after the grant; the late UNLOCK finds it gone.
            const unlockAt = grant + LEASE + d7!;
            op({ f: 'unlock', sid, key }, unlockAt, unlockAt + d8!, false);
            free.set(sid, { at: grant + LEASE, key, value: state.value });
            return;
          }
          const read = locked + d2!;
          const old = state.value;
          op({ f: 'get', sid, name: 'x' }, read, read + d3!, old === 0 ? null : String(old));
          const write = read + d3! + d4!;
          op({ f: 'set', sid, name: 'x', value: String(old + 1) }, write, write + d5!, true);
          const unlockAt = write + d5! + d6!;
          const released = unlockAt + d7!;
          op({ f: 'unlock', sid, key }, unlockAt, released + d8!, true);
          free.set(sid, { at: released, key, value: old + 1 });
        });
        let last = 0;
        for (const { at } of free.values()) last = Math.max(last, at + 50);
        for (const [sid, { value }] of free) {
          ops.push({
            process: plan.length,
            call: { f: 'get', sid, name: 'x' },
            invokedAt: ns(last),
            completedAt: ns(last + 1),
            outcome: 'ok',
            value: String(value),
          });
          last += 2;
        }
        const report = checkLocks(byInvocation(ops));
        assert.deepEqual(report.violations, []);
        assert.equal(report.leaseLost.length, plan.filter((s) => s.overstay).length);
        assert.equal(report.completed, plan.filter((s) => !s.overstay).length);
      }),
      { numRuns: 500 },
    );
  });
});
