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

describe('memory store scans', () => {
  /** A store of `count` sessions s0, s1, ..., each with variable `v` = its number modulo 10. */
  async function filled(count: number): Promise<MemoryStore> {
    const store = new MemoryStore();
    for (let i = 0; i < count; i++) {
      const vars = new Map([['v', String(i % 10)]]);
      await store.create(
        { id: `s${i}`, cls: 'c', data: '', user: null, timeout: 0, expires: 0, vars },
        0,
      );
    }
    return store;
  }

  it('an unindexed FIND, LISTVAR and LIST let other commands run while they walk', async () => {
    // More sessions than one batch of the walk (16,384 slots), so every scan yields at least once.
    const store = await filled(50_000);
    const order: string[] = [];
    const scans = [
      Promise.resolve(store.find('v', '3', 0)).then((ids) => order.push(`find ${ids.length}`)),
      Promise.resolve(store.listVar('v', 0)).then((pairs) => order.push(`listvar ${pairs.length}`)),
      Promise.resolve(store.list(0, { cls: 'other' })).then((page) =>
        order.push(`list ${page.ids.length}`),
      ),
    ];
    // Not a microtask later: a turn of the event loop later, while the scans are still walking.
    setImmediate(() => order.push(`get ${JSON.stringify(store.getVar('s1', 'v', 0))}`));
    await Promise.all(scans);
    assert.equal(order[0], 'get "1"');
    assert.deepEqual(order.slice(1).sort(), ['find 5000', 'list 0', 'listvar 50000']);
    await store.close();
  });

  it('a walk finds every session live throughout it exactly once, whatever changes meanwhile', async () => {
    const store = await filled(40_000);
    const found = store.find('v', '7', 0);
    // While it walks, between its batches: create sessions that match, destroy others.
    let created = 0;
    let rounds = 0;
    let walking = true;
    const churn = () => {
      if (!walking) return;
      rounds++;
      for (let i = 0; i < 500; i++) {
        const vars = new Map([['v', '7']]);
        void store.create(
          { id: `n${created++}`, cls: 'c', data: '', user: null, timeout: 0, expires: 0, vars },
          0,
        );
      }
      for (let i = 1; i < 40_000; i += 10) void store.destroy(`s${i}`, 0);
      setImmediate(churn);
    };
    setImmediate(churn);
    const ids = await found;
    walking = false;
    assert.ok(rounds >= 1, 'the store changed during the walk');
    const steady = ids.filter((id) => id.startsWith('s'));
    assert.equal(new Set(ids).size, ids.length, 'no id twice');
    assert.deepEqual(
      steady.sort(),
      Array.from({ length: 4_000 }, (_, i) => `s${i * 10 + 7}`).sort(),
    );
    await store.close();
  });

  it('a limit stops the walk at exactly that many, and a limit of 0 finds nothing', async () => {
    const store = await filled(20_000);
    assert.equal((await store.find('v', '2', 0, 1_999)).length, 1_999);
    assert.equal((await store.listVar('v', 0, 17_000)).length, 17_000);
    assert.deepEqual(await store.find('v', '2', 0, 0), []);
    assert.deepEqual(await store.listVar('v', 0, 0), []);
    await store.close();
  });

  it('a store closed while a scan walks fails that scan with a clear error', async () => {
    const store = await filled(40_000);
    const scan = store.find('v', '1', 0);
    setImmediate(() => void store.close());
    await assert.rejects(Promise.resolve(scan), /closed/);
  });
});
