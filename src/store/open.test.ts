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

  it('takes a Redis key prefix from ?prefix=', async () => {
    const store = await openStore('redis://127.0.0.1:6379?prefix=sessiond-open-test:');
    try {
      const now = Date.now();
      const init = {
        id: 'p1',
        cls: 'c',
        data: '',
        user: null,
        timeout: 5,
        expires: 0,
        vars: new Map(),
      };
      assert.equal(await store.create(init, now), true);
      const { createClient } = await import('@redis/client');
      const raw = createClient({ url: 'redis://127.0.0.1:6379' });
      await raw.connect();
      const keys = await raw.keys('sessiond-open-test:*');
      await raw.del(keys);
      await raw.close();
      assert.ok(keys.length > 0, 'keys live under the prefix');
    } finally {
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
