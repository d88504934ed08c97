/** The crash trial's checker on its own: what counts as lost, as phantom, as in flight. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dataNumber, expectation, settle, type Expectation, type Observed } from './ledger.ts';

/** An acknowledged session: counter at 5 (INC), seq at 7 (SET), data at "d3" (SETDATA). */
function written(pending: Partial<{ inc: number; seq: number; data: number }> = {}): Expectation {
  const entry = expectation('s');
  entry.created = 'acked';
  entry.counter.acked = 5;
  entry.counter.pending = pending.inc ?? 0;
  entry.seq.acked = 7;
  entry.seq.pending = pending.seq ?? null;
  entry.data.acked = 3;
  entry.data.pending = pending.data ?? null;
  return entry;
}

const asWritten: Observed = { counter: 5, seq: 7, data: 3 };

describe('settle()', () => {
  const cases: Array<{
    name: string;
    expected: Expectation;
    observed: Observed | null;
    lost: number;
    phantom: number;
    inFlight: number;
    applied: number;
    keep: boolean;
  }> = [
    {
      name: 'finds nothing wrong with a session as acknowledged',
      expected: written(),
      observed: asWritten,
      ...{ lost: 0, phantom: 0, inFlight: 0, applied: 0, keep: true },
    },
    {
      name: 'accepts an INC in flight either applied or not',
      expected: written({ inc: 1 }),
      observed: { ...asWritten, counter: 6 },
      ...{ lost: 0, phantom: 0, inFlight: 1, applied: 1, keep: true },
    },
    {
      name: 'counts each acknowledged INC missing from the counter as lost',
      expected: written({ inc: 1 }),
      observed: { ...asWritten, counter: 3 },
      ...{ lost: 2, phantom: 0, inFlight: 1, applied: 0, keep: true },
    },
    {
      name: 'counts a counter above acknowledged plus in flight as double-counted',
      expected: written({ inc: 1 }),
      observed: { ...asWritten, counter: 8 },
      ...{ lost: 0, phantom: 2, inFlight: 1, applied: 0, keep: true },
    },
    {
      name: 'accepts the SET in flight, and counts an older value as lost writes',
      expected: written({ seq: 8 }),
      observed: { ...asWritten, seq: 8, data: 1 },
      ...{ lost: 2, phantom: 0, inFlight: 1, applied: 1, keep: true },
    },
    {
      name: 'counts a value that was never sent as phantom',
      expected: written({ data: 4 }),
      observed: { ...asWritten, data: 9 },
      ...{ lost: 0, phantom: 1, inFlight: 1, applied: 0, keep: true },
    },
    {
      name: 'counts a missing session as every acknowledged write to it lost',
      expected: written({ inc: 1 }),
      observed: null,
      ...{ lost: 1 + 5 + 7 + 3, phantom: 0, inFlight: 1, applied: 0, keep: false },
    },
    {
      name: 'accepts a session whose CREATE was in flight as absent',
      expected: expectation('s'),
      observed: null,
      ...{ lost: 0, phantom: 0, inFlight: 1, applied: 0, keep: false },
    },
    {
      name: 'accepts a session whose CREATE was in flight as present',
      expected: expectation('s'),
      observed: { counter: 0, seq: 0, data: 0 },
      ...{ lost: 0, phantom: 0, inFlight: 1, applied: 1, keep: true },
    },
  ];
  for (const { name, expected, observed, keep, ...counts } of cases) {
    it(name, () => {
      const { verdict, keep: kept } = settle(expected, observed);
      const { lost, phantom, inFlight, applied } = verdict;
      assert.deepEqual({ lost, phantom, inFlight, applied }, counts);
      assert.equal(kept, keep);
      assert.equal(verdict.findings.length > 0, counts.lost + counts.phantom > 0);
    });
  }

  it('adopts what it found, so that a loss is reported once', () => {
    const expected = written({ inc: 1, seq: 8 });
    settle(expected, { counter: 2, seq: 8, data: 3 });
    assert.deepEqual(
      { counter: expected.counter, seq: expected.seq },
      { counter: { acked: 2, pending: 0 }, seq: { acked: 8, pending: null } },
    );
    assert.equal(settle(expected, { counter: 2, seq: 8, data: 3 }).verdict.lost, 0);
  });
});

describe('dataNumber()', () => {
  it('reads "d<n>" and nothing else', () => {
    assert.equal(dataNumber('d12'), 12);
    assert.ok(Number.isNaN(dataNumber('')));
    assert.ok(Number.isNaN(dataNumber('x1')));
  });
});
