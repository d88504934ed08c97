import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runStoreConformance } from '../conformance.ts';
import { MemoryStore } from './memory-store.ts';

runStoreConformance('memory', ({ indexedVars }) =>
  Promise.resolve(new MemoryStore({ indexedVars })),
);

describe('memory store at scale', () => {
  it('COUNT with 200,000 sessions due at once counts them out, and the sweep still reports each', async () => {
    // A spread of that many reaped sessions used to throw RangeError (soak finding).
    const store = new MemoryStore();
    const vars = new Map<string, string>();
    for (let i = 0; i < 200_000; i++) {
      const init = { id: `s${i}`, cls: 'c', data: '', user: null, timeout: 1, expires: 0, vars };
      await store.create(init, 0);
    }
    assert.equal(await store.count(5_000), 0);
    let reported = 0;
    for (let batch = await store.sweep(5_000, 50_000); batch.length > 0;) {
      reported += batch.length;
      batch = await store.sweep(5_000, 50_000);
    }
    assert.equal(reported, 200_000);
    await store.close();
  });
});

describe('memory store answers', () => {
  it('answers reads and writes at once, not with a promise (the server hot path relies on it)', () => {
    const store = new MemoryStore();
    const init = { id: 's1', cls: 'c', data: '', user: null, timeout: 60, expires: 0 };
    const limits = { maxVars: 2 };
    const answers: unknown[] = [
      store.create({ ...init, vars: new Map() }, 0),
      store.setVars('s1', [['a', '1']], 0, limits),
      store.getVar('s1', 'a', 0),
      store.incVar('s1', 'n', 5n, 0, limits),
      store.setVars('s1', [['b', '1']], 0, limits),
      store.get('s1', 0, { touch: true, vars: true }),
      store.unsetVars('s1', ['a'], 0),
      store.touch('s1', 0),
      store.destroy('s1', 0),
    ];
    for (const answer of answers) assert.ok(!(answer instanceof Promise));
    assert.deepEqual(answers.slice(1, 5), ['ok', '1', 5n, 'limit']);
  });
});
