import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStore } from './open.ts';

describe('openStore', () => {
  it('opens the store each spec names', async () => {
    for (const [spec, kind] of [
      ['memory', 'memory'],
      ['redis://127.0.0.1:6379', 'redis'],
      ['postgres://postgres@127.0.0.1:5432/postgres', 'postgres'],
    ] as const) {
      const store = await openStore(spec);
      assert.equal(store.kind, kind);
      await store.close();
    }
  });

  it('refuses a spec no store answers to, naming the ones that exist', async () => {
    await assert.rejects(
      openStore('mysql://x'),
      /unknown store "mysql:\/\/x": use memory, sqlite:PATH/,
    );
    await assert.rejects(openStore('sqlite:'), /unknown store/);
  });
});
