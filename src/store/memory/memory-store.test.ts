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
