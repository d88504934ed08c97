import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createClient, RESP_TYPES } from '@redis/client';
import { ManualClock } from '../../core/clock.ts';
import { Engine } from '../../core/engine.ts';
import { runStoreConformance } from '../conformance.ts';
import type { SessionInit, StoreEvent } from '../types.ts';
import { startRedisCluster, type RedisClusterHarness } from './cluster-harness.ts';
import { RedisEvents } from './redis-events.ts';
import { RedisStore, type RedisStoreOptions } from './redis-store.ts';

const REDIS_URL = process.env['SESSIOND_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const T0 = Date.UTC(2026, 0, 1);
const LIMITS = { maxVars: 1000 };

const closers: Array<() => Promise<void>> = [];
const prefixes: string[] = [];
let cluster: Promise<RedisClusterHarness> | undefined;

after(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  await deleteStandalonePrefixes();
  await (await cluster?.catch(() => undefined))?.stop();
});

function freshPrefix(): string {
  const prefix = `sessiond-test:${randomBytes(6).toString('hex')}:`;
  prefixes.push(prefix);
  return prefix;
}

/** Removes every key the standalone tests wrote, by SCAN + DEL of each prefix. */
async function deleteStandalonePrefixes(): Promise<void> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    for (const prefix of prefixes) {
      for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await client.del(keys);
      }
    }
  } finally {
    await client.close();
  }
}

function startCluster(): Promise<RedisClusterHarness> {
  cluster ??= startRedisCluster();
  return cluster;
}

/** Where a store connects: the standalone Redis, or the test cluster. */
type Target = 'standalone' | 'cluster';

async function connection(target: Target): Promise<Pick<RedisStoreOptions, 'url' | 'cluster'>> {
  if (target === 'standalone') return { url: REDIS_URL };
  return { cluster: { rootNodes: (await startCluster()).rootNodes } };
}

async function openStore(target: Target, options: RedisStoreOptions = {}): Promise<RedisStore> {
  const store = await RedisStore.open({ ...(await connection(target)), ...options });
  closers.push(() => store.close());
  return store;
}

function init(id: string, fields: Partial<SessionInit> = {}): SessionInit {
  return {
    id,
    cls: 'app',
    data: '',
    user: null,
    timeout: 60,
    expires: 0,
    vars: new Map(),
    ...fields,
  };
}

/** A raw client of the standalone Redis that reads replies as bytes. */
async function rawStandalone() {
  const client = createClient({
    url: REDIS_URL,
    RESP: 2,
    commandOptions: { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } },
  });
  await client.connect();
  closers.push(() => client.close());
  return client;
}

runStoreConformance('redis', async ({ indexedVars }) =>
  openStore('standalone', { prefix: freshPrefix(), indexedVars }),
);

runStoreConformance('redis cluster', async ({ indexedVars }) =>
  openStore('cluster', { prefix: freshPrefix(), indexedVars }),
);

for (const target of ['standalone', 'cluster'] as const) {
  describe(`RedisStore (${target})`, () => {
    /** Two stores on one prefix: two sessiond servers sharing one Redis. */
    async function twoServers(indexedVars: readonly string[] = []) {
      const prefix = freshPrefix();
      return [
        await openStore(target, { prefix, indexedVars }),
        await openStore(target, { prefix, indexedVars }),
        prefix,
      ] as const;
    }

    it('keeps every byte of ids, classes, users, names and values, NUL and 0xff included', async () => {
      const store = await openStore(target, { prefix: freshPrefix(), indexedVars: ['k\0\xff'] });
      const id = '}a{b}~\x7e!';
      const vars = new Map([
        ['k\0\xff', 'v\0\xff\x80\r\n'],
        ['\xff', ''],
        ['', '\0'],
      ]);
      assert.equal(
        await store.create(
          init(id, { cls: 'c\0\xff', user: 'u\0\xff', data: 'd\0\xff', vars }),
          T0,
        ),
        true,
      );
      const record = await store.get(id, T0, { touch: false, vars: true });
      assert.ok(record);
      assert.equal(record.cls, 'c\0\xff');
      assert.equal(record.user, 'u\0\xff');
      assert.equal(record.data, 'd\0\xff');
      assert.deepEqual(record.vars, vars);
      assert.equal(await store.getVar(id, 'k\0\xff', T0), 'v\0\xff\x80\r\n');
      assert.deepEqual(await store.find('k\0\xff', 'v\0\xff\x80\r\n', T0), [id]);
      assert.deepEqual(await store.listVar('k\0\xff', T0), [[id, 'v\0\xff\x80\r\n']]);
      assert.deepEqual(await store.find('\xff', '', T0), [id]);
      assert.deepEqual(await store.userSessions('u\0\xff', T0), [id]);
      assert.equal(await store.count(T0, 'c\0\xff'), 1);
      assert.deepEqual((await store.list(T0, { cls: 'c\0\xff' })).ids, [id]);
      assert.deepEqual(
        (await store.sweep(T0 + 60_000, 10)).map((s) => s.cls),
        ['c\0\xff'],
      );
    });

    it('stores the bytes themselves in Redis, not a UTF-8 re-encoding', async (t) => {
      if (target === 'cluster') return t.skip('checked once, on the standalone Redis');
      const prefix = freshPrefix();
      const store = await openStore(target, { prefix });
      await store.create(init('s1', { vars: new Map([['n', '\0\xff']]) }), T0);
      const raw = await rawStandalone();
      const value = await raw.hGet(`${prefix}{s:s1}v`, 'n');
      assert.deepEqual(value, Buffer.from([0x00, 0xff]));
    });

    it('two servers doing 200 concurrent increments end on the exact total', async () => {
      const [a, b] = await twoServers();
      await a.create(init('s1'), T0);
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).incVar('s1', 'n', 1n, T0, LIMITS)),
      );
      assert.equal(await b.getVar('s1', 'n', T0), '200');
      assert.deepEqual(
        results.map(Number).sort((x, y) => x - y),
        Array.from({ length: 200 }, (_, i) => i + 1),
      );
    });

    it('two servers waiting for one lock never hold it together', async () => {
      const [a, b] = await twoServers();
      const engines = [a, b].map((store) => new Engine({ store, clock: new ManualClock() }));
      await engines[0]!.create('s1', { timeout: 0 });
      let holders = 0;
      let most = 0;
      const keys: number[] = [];
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const engine = engines[i % 2]!;
          const got = await engine.lock('s1', { waitMs: 30_000 });
          assert.ok(got.acquired, 'every locker gets its turn');
          holders++;
          most = Math.max(most, holders);
          keys.push(got.key);
          await new Promise((resolve) => setImmediate(resolve));
          holders--;
          assert.equal(await engine.unlock('s1', got.key), true);
        }),
      );
      assert.equal(most, 1);
      assert.equal(new Set(keys).size, 20);
    });

    it('two servers sweeping at once report each expired session exactly once', async () => {
      const [a, b] = await twoServers(['k']);
      for (let i = 0; i < 60; i++) {
        const vars = new Map([['k', String(i % 3)]]);
        await a.create(init(`s${i}`, { timeout: i < 50 ? 5 : 50, user: 'alice', vars }), T0);
      }
      const now = T0 + 5000;
      const reported: string[] = [];
      for (;;) {
        const [fromA, fromB] = await Promise.all([a.sweep(now, 7), b.sweep(now, 7)]);
        reported.push(...fromA.map((s) => s.id), ...fromB.map((s) => s.id));
        if (fromA.length === 0 && fromB.length === 0) break;
      }
      assert.equal(reported.length, 50);
      assert.equal(new Set(reported).size, 50);
      assert.equal(await a.count(now), 10);
      assert.equal((await b.userSessions('alice', now)).length, 10);
      assert.equal((await b.listVar('k', now)).length, 10);
    });

    it('a touch on one server keeps the session counted on the other', async () => {
      const [a, b] = await twoServers();
      await a.create(init('s1', { timeout: 10 }), T0);
      await a.touch('s1', T0 + 8000);
      assert.equal(await b.count(T0 + 15_000), 1);
      assert.equal(await b.count(T0 + 18_000), 0);
      assert.deepEqual(await b.sweep(T0 + 15_000, 10), []);
      assert.deepEqual(await b.sweep(T0 + 18_000, 10), [{ id: 's1', cls: 'app' }]);
    });

    it('no write on the old id is lost while another server regenerates it', async () => {
      const [a, b] = await twoServers();
      await a.create(init('old', { timeout: 0 }), T0);
      let done = false;
      const written: string[] = [];
      const writer = (async () => {
        for (let i = 0; !done; i++) {
          const outcome = await b.setVars('old', [[`k${i}`, 'v']], T0, LIMITS);
          if (outcome === 'ok') written.push(`k${i}`);
          else assert.equal(outcome, 'readonly');
        }
      })();
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(await a.regenerate('old', 'new', 5000, T0), 'ok');
      done = true;
      await writer;
      const fresh = await b.get('new', T0, { touch: false, vars: true });
      assert.ok(fresh);
      for (const name of written) assert.equal(fresh.vars.get(name), 'v', name);
      assert.equal((await b.get('old', T0, { touch: false, vars: false }))?.readonly, true);
    });

    it('a regenerate that finds the new id taken leaves the old session writable', async () => {
      const store = await openStore(target, { prefix: freshPrefix() });
      await store.create(init('old'), T0);
      await store.create(init('taken'), T0);
      assert.equal(await store.regenerate('old', 'taken', 0, T0), 'exists');
      assert.equal(await store.setVars('old', [['a', '1']], T0, LIMITS), 'ok');
      assert.equal(await store.count(T0), 2);
    });

    it('regenerate moves the lock and its fence to the new id', async () => {
      const store = await openStore(target, { prefix: freshPrefix() });
      await store.create(init('old', { user: 'bob' }), T0);
      const held = await store.lock('old', 30_000, T0);
      assert.ok(held !== 'nosession' && held.acquired);
      assert.equal(await store.regenerate('old', 'new', 1000, T0), 'ok');
      const record = await store.get('new', T0, { touch: false, vars: false });
      assert.deepEqual(record?.lock, { key: held.key, until: held.until });
      assert.equal(await store.unlock('old', held.key, T0), false);
      assert.equal(await store.unlock('new', held.key, T0), true);
      const next = await store.lock('new', 1000, T0);
      assert.ok(next !== 'nosession' && next.acquired && next.key > held.key);
      assert.deepEqual((await store.userSessions('bob', T0)).sort(), ['new', 'old']);
      assert.deepEqual(await store.userSessions('bob', T0 + 1000), ['new']);
    });

    it('readers drop index entries whose session is gone and keep those merely expired', async () => {
      const [a, b, prefix] = await twoServers(['k']);
      await a.create(init('live', { user: 'u', timeout: 0, vars: new Map([['k', 'v']]) }), T0);
      await a.create(init('short', { user: 'u', timeout: 1, vars: new Map([['k', 'v']]) }), T0);
      await a.create(init('gone', { user: 'u', vars: new Map([['k', 'v']]) }), T0);
      // A session that vanished without its index entries: as the safety-net expiry leaves it.
      await rawCommand(target, `${prefix}{s:gone}m`, [
        'DEL',
        `${prefix}{s:gone}m`,
        `${prefix}{s:gone}v`,
      ]);
      assert.deepEqual(await b.userSessions('u', T0 + 1000), ['live']);
      assert.deepEqual(await b.find('k', 'v', T0 + 1000), ['live']);
      assert.deepEqual(await b.listVar('k', T0 + 1000), [['live', 'v']]);
      // The expired one is still indexed: the sweep reports it and removes its entries.
      assert.deepEqual(await b.sweep(T0 + 1000, 10), [{ id: 'short', cls: 'app' }]);
      // The vanished one's deadline entry counts until the sweep reaches it, then goes unreported.
      assert.equal(await b.count(T0 + 1000), 2);
      assert.deepEqual(await b.sweep(T0 + 60_000, 10), []);
      assert.equal(await b.count(T0 + 60_000), 1);
    });

    it('reads a large index in SSCAN/HSCAN batches: each live entry once, dead ones dropped, no more than the limit', async () => {
      const prefix = freshPrefix();
      const store = await openStore(target, { prefix, indexedVars: ['k'] });
      const ids = Array.from({ length: 1200 }, (_, i) => `s${String(i).padStart(4, '0')}`);
      for (let i = 0; i < ids.length; i += 300) {
        await Promise.all(
          ids
            .slice(i, i + 300)
            .map((id) => store.create(init(id, { user: 'u', vars: new Map([['k', 'v']]) }), T0)),
        );
      }
      // Entries of sessions that vanished, scattered through each index's batches.
      const ghosts = Array.from({ length: 800 }, (_, i) => `ghost${i} t`);
      const byUser = `${prefix}{u:u}`;
      const byValue = `${prefix}{f:1:kv}`;
      const byName = `${prefix}{n:k}`;
      await rawCommand(target, byUser, ['SADD', byUser, ...ghosts]);
      await rawCommand(target, byValue, ['SADD', byValue, ...ghosts]);
      await rawCommand(target, byName, ['HSET', byName, ...ghosts.flatMap((g) => [g, 'v'])]);
      const distinct = (list: string[]) => new Set(list).size === list.length;
      for (const limit of [1, 1000]) {
        const some = [
          await store.userSessions('u', T0, limit),
          await store.find('k', 'v', T0, limit),
          (await store.listVar('k', T0, limit)).map(([id]) => id),
        ];
        for (const found of some) {
          assert.equal(found.length, limit);
          assert.ok(distinct(found));
        }
      }
      assert.deepEqual((await store.userSessions('u', T0)).sort(), ids);
      assert.deepEqual((await store.find('k', 'v', T0)).sort(), ids);
      assert.deepEqual((await store.listVar('k', T0)).map(([id]) => id).sort(), ids);
      assert.equal(Number(await rawCommand(target, byUser, ['SCARD', byUser])), 1200);
      assert.equal(Number(await rawCommand(target, byValue, ['SCARD', byValue])), 1200);
      assert.equal(Number(await rawCommand(target, byName, ['HLEN', byName])), 1200);
    });

    it('a regenerate frozen longer than the move timeout is taken back by the next write', async () => {
      const prefix = freshPrefix();
      const store = await openStore(target, { prefix });
      await store.create(init('s1', { timeout: 0 }), T0);
      // The marker a regenerate leaves when its server dies between its steps.
      await hset(target, `${prefix}{s:s1}m`, { mv: 'elsewhere', mvat: String(T0) });
      assert.equal(await store.setVars('s1', [['a', '1']], T0 + 9999, LIMITS), 'readonly');
      assert.equal(await store.setVars('s1', [['a', '1']], T0 + 10_000, LIMITS), 'ok');
      assert.equal(
        (await store.get('s1', T0 + 10_000, { touch: false, vars: false }))?.readonly,
        false,
      );
    });

    it('sets a Redis expiry only as a safety net, relative to the caller clock', async (t) => {
      if (target === 'cluster') return t.skip('checked once, on the standalone Redis');
      const prefix = freshPrefix();
      const store = await openStore(target, { prefix, safetyMarginMs: 60_000 });
      // A clock far behind the Redis host's: an absolute expiry would delete the keys at once.
      const past = Date.UTC(2000, 0, 1);
      await store.create(init('s1', { timeout: 10, vars: new Map([['a', '1']]) }), past);
      await store.create(init('s2', { timeout: 0 }), past);
      await store.create(init('s3', { timeout: 20 }), past);
      await store.setVars('s3', [['a', '1']], past, LIMITS);
      const raw = await rawStandalone();
      const ttl = await raw.pTTL(`${prefix}{s:s1}v`);
      assert.ok(ttl > 60_000 && ttl <= 70_000, `ttl ${ttl}`);
      assert.equal(await raw.pTTL(`${prefix}{s:s2}m`), -1);
      // A variables hash made after the session gets the same net.
      const later = await raw.pTTL(`${prefix}{s:s3}v`);
      assert.ok(later > 70_000 && later <= 80_000, `ttl ${later}`);
      assert.equal(await store.getVar('s1', 'a', past + 9999), '1');
    });

    it('refuses a prefix with a brace, which would move every key onto one slot', async () => {
      await assert.rejects(RedisStore.open({ url: REDIS_URL, prefix: 'a{b}' }), RangeError);
    });

    it('delivers each event from one server to every server subscriber exactly once', async () => {
      const prefix = freshPrefix();
      const [a, b] = [
        await RedisEvents.open({ ...(await connection(target)), prefix }),
        await RedisEvents.open({ ...(await connection(target)), prefix }),
      ];
      closers.push(
        () => a.close(),
        () => b.close(),
      );
      const got = { a: [] as string[], b: [] as string[] };
      // Waits for n events on both sides, but fails rather than spins if they never come.
      const everyone = (n: number) =>
        new Promise<void>((resolve, reject) => {
          const giveUp = Date.now() + 10_000;
          const check = () => {
            if (got.a.length >= n && got.b.length >= n) resolve();
            else if (Date.now() > giveUp)
              reject(new Error(`events missing: ${JSON.stringify(got)}`));
            else setTimeout(check, 5);
          };
          check();
        });
      const text = (e: StoreEvent) => `${e.type} ${'count' in e ? e.count : e.id}`;
      await a.subscribe((event) => got.a.push(text(event)));
      await b.subscribe((event) => got.b.push(text(event)));
      await a.publish({ type: 'created', id: 's1' });
      await a.publish({ type: 'destroyed', id: 'id\0\xff' });
      await b.publish({ type: 'gc', count: 3 });
      await everyone(3);
      // A last event: anything delivered twice would have arrived before it.
      await a.publish({ type: 'expired', id: 'end' });
      await everyone(4);
      const expected = ['created s1', 'destroyed id\0\xff', 'gc 3', 'expired end'];
      // Each server hears its own events at once and the others' after a trip through Redis, so
      // the order across servers may differ; each event arrives exactly once on both.
      assert.deepEqual(got.a.toSorted(), expected.toSorted());
      assert.deepEqual(got.b.toSorted(), expected.toSorted());
    });
  });
}

async function hset(target: Target, key: string, fields: Record<string, string>): Promise<void> {
  await rawCommand(target, key, ['HSET', key, ...Object.entries(fields).flat()]);
}

/** One command, routed by `key`, on a throwaway connection to the target. */
async function rawCommand(target: Target, key: string, args: string[]): Promise<unknown> {
  if (target === 'standalone') {
    const client = createClient({ url: REDIS_URL });
    await client.connect();
    const reply = await client.sendCommand(args);
    await client.close();
    return reply;
  }
  const { createCluster } = await import('@redis/client');
  const client = createCluster({
    rootNodes: (await startCluster()).rootNodes.map((url) => ({ url })),
  });
  await client.connect();
  const reply = await client.sendCommand(key, false, args);
  await client.close();
  return reply;
}
