import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SessionTable, SlotIndex } from './session-table.ts';

/** Ids of every shape the index stores differently: short latin1, long, beyond latin1, empty. */
const anyId = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ minLength: 30, maxLength: 60 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('', 'a', 'b', 'é', '\u0100'),
);

describe('SlotIndex', () => {
  it('behaves as a Map from id to slot under any sequence of sets and deletes', () => {
    const op = fc.tuple(fc.boolean(), anyId);
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const model = new Map<string, number>();
        const index = new SlotIndex();
        const free: number[] = [];
        let next = 0;
        for (const [set, id] of ops) {
          if (set && !model.has(id)) {
            const slot = free.pop() ?? next++;
            index.set(id, slot);
            model.set(id, slot);
          } else if (!set) {
            const slot = model.get(id);
            assert.equal(index.delete(id), model.delete(id));
            if (slot !== undefined) free.push(slot);
          }
          assert.equal(index.size, model.size);
          assert.equal(index.get(id), model.get(id));
        }
        for (const [id, slot] of model) {
          assert.equal(index.get(id), slot);
          assert.equal(index.idOf(slot), id);
        }
        assert.deepEqual(new Map(index), model);
        assert.deepEqual(new Set(index.keys()), new Set(model.keys()));
      }),
    );
  });

  it('finds every id after growth and many deletions (no tombstones, backward shift)', () => {
    const index = new SlotIndex();
    for (let i = 0; i < 20_000; i++) index.set(`id-${i}`, i);
    for (let i = 0; i < 20_000; i += 3) assert.equal(index.delete(`id-${i}`), true);
    for (let i = 0; i < 20_000; i++)
      assert.equal(index.get(`id-${i}`), i % 3 === 0 ? undefined : i);
    assert.equal(index.delete('id-0'), false);
    assert.throws(() => index.set('id-1', 1), /already present/);
  });

  it('stays a Map under long churn near its highest load, in a table that never grows', () => {
    // 1,000 live ids in a 2,048-entry table: long probe runs, so deletions shift entries often.
    const index = new SlotIndex();
    const model = new Map<string, number>();
    const live: string[] = [];
    let n = 0;
    for (; n < 1000; n++) {
      index.set(`k${n}`, n);
      model.set(`k${n}`, n);
      live.push(`k${n}`);
    }
    let seed = 7;
    const random = (below: number) => (seed = (Math.imul(seed, 48271) >>> 0) % 2147483647) % below;
    for (let round = 0; round < 50_000; round++) {
      const pick = random(live.length);
      const id = live[pick]!;
      const slot = model.get(id)!;
      assert.equal(index.delete(id), true);
      model.delete(id);
      const fresh = `k${n++}`;
      index.set(fresh, slot);
      model.set(fresh, slot);
      live[pick] = fresh;
      if (round % 5000 === 0) for (const [key, at] of model) assert.equal(index.get(key), at);
    }
    for (const [key, at] of model) assert.equal(index.get(key), at);
    assert.equal(index.size, 1000);
  });

  it('iterates every id present throughout exactly once, whatever changes meanwhile (SCAN)', () => {
    const table = new SessionTable();
    for (let i = 0; i < 5000; i++) table.add(`s${i}`, 'c', 0);
    const seen = new Map<string, number>();
    let step = 0;
    for (const id of table.slots.keys()) {
      seen.set(id, (seen.get(id) ?? 0) + 1);
      // Churn while iterating: remove odd ones ahead (their slots are reused), add new ones.
      if (step < 2500) table.remove(`s${2 * step + 1}`, table.slots.get(`s${2 * step + 1}`)!);
      table.add(`new${step++}`, 'c', 0);
      if (step > 20_000) break;
    }
    for (let i = 0; i < 5000; i += 2) assert.equal(seen.get(`s${i}`), 1, `s${i}`);
    assert.ok([...seen.values()].every((n) => n === 1));
    table.clear();
    assert.equal(table.size, 0);
    assert.equal([...table.slots].length, 0);
  });
});

describe('SessionTable', () => {
  it('reads a slot id back, and nothing for a freed slot', () => {
    const table = new SessionTable();
    const a = table.add('alpha', 'c', 0);
    const b = table.add('x'.repeat(200), 'c', 0);
    assert.equal(table.slots.idOf(a), 'alpha');
    assert.equal(table.slots.idOf(b), 'x'.repeat(200));
    table.remove('alpha', a);
    assert.equal(table.slots.idOf(a), undefined);
    assert.equal(table.live('alpha', 0), undefined);
    assert.equal(table.slots.get('x'.repeat(200)), b);
  });
});
