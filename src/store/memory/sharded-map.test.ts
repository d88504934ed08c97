import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ShardedMap } from './sharded-map.ts';

describe('ShardedMap', () => {
  it('behaves as a Map under any sequence of sets and deletes', () => {
    const op = fc.tuple(fc.boolean(), fc.string({ maxLength: 12 }), fc.integer());
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const model = new Map<string, number>();
        const sharded = new ShardedMap<number>();
        for (const [set, key, value] of ops) {
          if (set) {
            model.set(key, value);
            sharded.set(key, value);
          } else {
            assert.equal(sharded.delete(key), model.delete(key));
          }
          assert.equal(sharded.size, model.size);
          assert.equal(sharded.get(key), model.get(key));
        }
        assert.deepEqual(new Map(sharded), model);
        assert.deepEqual(new Set(sharded.keys()), new Set(model.keys()));
      }),
    );
  });

  it('iterates every key present throughout exactly once, whatever changes meanwhile (SCAN)', () => {
    const map = new ShardedMap<number>();
    for (let i = 0; i < 5000; i++) map.set(`s${i}`, i);
    const seen = new Map<string, number>();
    let step = 0;
    for (const key of map.keys()) {
      seen.set(key, (seen.get(key) ?? 0) + 1);
      // Churn while iterating: remove odd ones ahead, add new ones.
      if (step < 2500) map.delete(`s${2 * step + 1}`);
      map.set(`new${step++}`, 0);
      if (step > 20_000) break;
    }
    for (let i = 0; i < 5000; i += 2) assert.equal(seen.get(`s${i}`), 1, `s${i}`);
    assert.ok([...seen.values()].every((n) => n === 1));
    map.clear();
    assert.equal(map.size, 0);
    assert.equal([...map].length, 0);
  });
});
