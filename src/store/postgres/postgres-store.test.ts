import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { ManualClock } from '../../core/clock.ts';
import { Engine } from '../../core/engine.ts';
import type { SessionEvent } from '../../core/events.ts';
import { runStoreConformance } from '../conformance.ts';
import { deadlineOf, type SessionInit, type StoreEvent } from '../types.ts';
import { PostgresStore, type PostgresStoreOptions } from './postgres-store.ts';
import { buildQueries } from './queries.ts';
import { MIGRATIONS, SCHEMA_VERSION, migrate, quoteSchema, schemaVersion } from './schema.ts';

// The machine's PostgreSQL (trust auth); each run works in a database of its own, dropped at the end.
const SERVER = process.env['SESSIOND_TEST_PG'] ?? 'postgres://postgres@127.0.0.1:5432';
const DATABASE = `sessiond_test_${randomBytes(6).toString('hex')}`;
const URL = `${SERVER}/${DATABASE}`;

const admin = new pg.Client({ connectionString: `${SERVER}/postgres` });
await admin.connect();
// The name is made above from hex digits: it cannot carry SQL.
await admin.query(`CREATE DATABASE ${DATABASE}`);

let schemas = 0;
const opened: PostgresStore[] = [];
const clients: pg.Client[] = [];

/** A fresh schema name in the test database. */
function freshSchema(): string {
  return `s${++schemas}`;
}

async function open(options: Partial<PostgresStoreOptions> = {}): Promise<PostgresStore> {
  const store = await PostgresStore.open({
    url: URL,
    schema: freshSchema(),
    poolSize: 4,
    ...options,
  });
  opened.push(store);
  return store;
}

/** A second server on the schema of `store`. */
function sibling(store: PostgresStore, options: Partial<PostgresStoreOptions> = {}) {
  return open({ schema: store.schema, ...options });
}

/** A plain connection to the test database, for looking behind the store. */
async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: URL });
  await client.connect();
  clients.push(client);
  return client;
}

let previous: PostgresStore | undefined;
runStoreConformance('postgres', async ({ indexedVars }) => {
  // The suite closes its stores only when it ends. Close each as the next test begins, so the
  // run holds a few connections instead of a pool and a listener per test.
  await previous?.close();
  previous = await open({ indexedVars });
  return previous;
});

const T0 = 1_700_000_000_000;
const LIMITS = { maxVars: 1000 };

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

/** Resolves once `done()` holds; fails after `ms` of real time (for deliveries, not for expiry). */
async function until(done: () => boolean, what: string, ms = 5000): Promise<void> {
  const giveUp = performance.now() + ms;
  while (!done()) {
    if (performance.now() > giveUp) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The plan PostgreSQL chooses for one of the store's own statements, as text. */
async function plan(client: pg.Client, sql: string, params: unknown[]): Promise<string> {
  const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
  return rows.map((row) => row['QUERY PLAN']).join('\n');
}

const b = (s: string) => Buffer.from(s, 'latin1');

describe('PostgresStore', () => {
  it('keeps every byte of ids, names, values, data, user and class, NUL and 0xff included', async () => {
    const store = await open({ indexedVars: ['n\0'] });
    const id = 'id\0\xff\x80';
    const every = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
    const vars: Array<[string, string]> = [
      ['n\0', 'v\0w'],
      ['\xff', '\xfe\xff\x00\x01'],
      ['', ''],
      ['all', every],
    ];
    await store.create(init(id, { data: `d\0\xff${every}`, user: 'u\0\xff', cls: 'c\0' }), T0);
    assert.equal(await store.setVars(id, vars, T0, LIMITS), 'ok');

    const record = await store.get(id, T0, { touch: false, vars: true });
    assert.ok(record);
    assert.equal(record.id, id);
    assert.equal(record.data, `d\0\xff${every}`);
    assert.equal(record.user, 'u\0\xff');
    assert.equal(record.cls, 'c\0');
    assert.deepEqual(record.vars, new Map(vars));
    assert.equal(await store.getVar(id, 'all', T0), every);
    assert.deepEqual(await store.find('n\0', 'v\0w', T0), [id]);
    assert.deepEqual(await store.find('n\0', 'v', T0), []);
    assert.deepEqual(await store.listVar('\xff', T0), [[id, '\xfe\xff\x00\x01']]);
    assert.deepEqual(await store.userSessions('u\0\xff', T0), [id]);
    assert.deepEqual(await store.list(T0, { cls: 'c\0' }), { cursor: '0', ids: [id] });

    // Stored as the bytes themselves, one per code unit, not as UTF-8 or an escape.
    const client = await connect();
    const { rows } = await client.query<{ value: Buffer }>(
      `SELECT value FROM ${quoteSchema(store.schema)}.vars WHERE sid = $1 AND name = $2`,
      [b(id), b('all')],
    );
    assert.deepEqual(rows[0]?.value, Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
  });

  it('applies each migration once, even when two servers open a fresh schema together', async () => {
    const schema = freshSchema();
    const [first, second] = await Promise.all([open({ schema }), open({ schema })]);
    await first.create(init('s1'), T0);
    assert.equal(await second.count(T0), 1);

    const client = await connect();
    const { rows } = await client.query<{ version: number }>(
      `SELECT version FROM ${quoteSchema(schema)}.schema_version ORDER BY version`,
    );
    assert.deepEqual(
      rows.map((row) => row.version),
      MIGRATIONS.map((step) => step.version),
    );
    assert.equal(await schemaVersion(client, schema), SCHEMA_VERSION);
    assert.equal(await migrate(client, schema), 0);
    const third = await open({ schema });
    assert.equal(await third.count(T0), 1);
  });

  it('refuses a schema written by a newer sessiond instead of guessing at it', async () => {
    const store = await open();
    const client = await connect();
    await client.query(
      `INSERT INTO ${quoteSchema(store.schema)}.schema_version (version, description) VALUES ($1, 'future')`,
      [SCHEMA_VERSION + 1],
    );
    await assert.rejects(sibling(store), /newer/);
  });

  it('takes only a plain identifier as the schema name', async () => {
    for (const schema of ['x"; DROP TABLE t; --', 'Upper', '1abc', 'a'.repeat(57), '']) {
      await assert.rejects(PostgresStore.open({ url: URL, schema }), RangeError);
    }
  });

  it('answers find, listVar, userSessions, count, list, get and sweep through indexes', async () => {
    const store = await open({ indexedVars: ['cart'] });
    const S = quoteSchema(store.schema);
    const q = buildQueries(S);
    const client = await connect();
    // 20000 sessions: 2% that never expire, the rest expired by `now`; 1% with a cart, 0.1%
    // with a user, 100 classes. Each query below should touch only what it returns.
    await client.query(
      `INSERT INTO ${S}.sessions (id, cls, data, "user", created, touched, timeout, expires)
       SELECT convert_to('id' || g, 'UTF8'), convert_to('c' || (g % 100), 'UTF8'), '\\x',
              CASE WHEN g % 1000 = 0 THEN convert_to('u' || (g % 3), 'UTF8') END,
              $1::bigint, $1::bigint, CASE WHEN g % 50 = 0 THEN 0 ELSE 10 END, 0
       FROM generate_series(1, 20000) g`,
      [T0],
    );
    await client.query(
      `INSERT INTO ${S}.vars (sid, name, value, indexed)
       SELECT convert_to('id' || g, 'UTF8'), 'color'::bytea, convert_to('red' || (g % 7), 'UTF8'), false
       FROM generate_series(1, 20000) g
       UNION ALL
       SELECT convert_to('id' || g, 'UTF8'), 'cart'::bytea, convert_to('item' || g, 'UTF8'), true
       FROM generate_series(1, 20000, 100) g`,
    );
    await client.query(`VACUUM ANALYZE ${S}.sessions`);
    await client.query(`VACUUM ANALYZE ${S}.vars`);
    const now = T0 + 60_000;

    const find = await plan(client, q.findIndexed, [now, b('cart'), b('item101'), 100_001]);
    assert.match(find, /Index Scan using vars_find/);
    assert.match(find, /Index Scan using sessions_pkey/);
    assert.doesNotMatch(find, /Seq Scan/);
    const listVar = await plan(client, q.listVarIndexed, [now, b('cart'), 100_001]);
    assert.match(listVar, /(Index|Bitmap Index) Scan (using|on) vars_find/);
    assert.doesNotMatch(listVar, /Seq Scan on vars/);
    assert.match(
      await plan(client, q.userSessions, [b('u1'), now, 100_001]),
      /(Index|Bitmap Index) Scan (using|on) sessions_user/,
    );
    const count = await plan(client, q.countLive, [now]);
    assert.equal(count.match(/Index Only Scan using sessions_deadline/g)?.length, 2, count);
    assert.doesNotMatch(count, /Seq Scan/);
    assert.match(
      await plan(client, q.countLiveCls, [now, b('c7')]),
      /Index Only Scan using sessions_cls/,
    );
    assert.match(
      await plan(client, q.listNextPage, [now, 100, b('id5')]),
      /Limit[\s\S]*Index Scan using sessions_pkey[\s\S]*Index Cond: \(id > /,
    );
    assert.match(
      await plan(client, q.listNextPageCls, [now, 100, b('c7'), b('id5')]),
      /Limit[\s\S]*Index (Only )?Scan using sessions_cls/,
    );
    const load = await plan(client, q.getFull, [b('id5'), now, 1000]);
    assert.match(load, /Index Scan using sessions_pkey/);
    assert.match(load, /Index Scan using vars_pkey/);
    assert.doesNotMatch(load, /Seq Scan/);

    // The sweep runs inside a function: auto_explain shows the plans of its statements.
    await client.query("LOAD 'auto_explain'");
    await client.query('SET auto_explain.log_min_duration = 0');
    await client.query('SET auto_explain.log_nested_statements = on');
    await client.query('SET client_min_messages = log');
    const notices: string[] = [];
    client.on('notice', (notice) => notices.push(notice.message ?? ''));
    await client.query('BEGIN');
    await client.query(q.sweep, [now, 10]);
    await client.query('ROLLBACK');
    await client.query('SET client_min_messages = notice');
    const sweep = notices.find((text) => text.includes('SKIP LOCKED')) ?? notices.join('\n');
    assert.match(sweep, /Index Scan using sessions_deadline/);
    assert.match(sweep, /Index Cond: \(deadline <= /);
  });

  it('stores the deadline deadlineOf gives, through create, touch, update and regenerate', async () => {
    const store = await open();
    const cases: Array<[number, number]> = [
      [0, 0],
      [60, 0],
      [0, T0 + 5000],
      [60, T0 + 5000],
      [60, T0 + 60_000],
      [60, T0 + 600_000],
    ];
    for (const [i, [timeout, expires]] of cases.entries()) {
      await store.create(init(`s${i}`, { timeout, expires }), T0);
      await store.getVar(`s${i}`, 'a', T0 + 2000);
    }
    await store.create(init('u'), T0);
    await store.update('u', { timeout: 10, expires: T0 + 7000 }, T0 + 1500);
    await store.create(init('r', { timeout: 30 }), T0);
    await store.regenerate('r', 'r2', 4000, T0 + 3000);

    const client = await connect();
    const { rows } = await client.query<{
      id: Buffer;
      touched: string;
      timeout: string;
      expires: string;
      deadline: string | null;
    }>(`SELECT id, touched, timeout, expires, deadline FROM ${quoteSchema(store.schema)}.sessions`);
    assert.equal(rows.length, cases.length + 3);
    for (const row of rows) {
      const expected = deadlineOf(Number(row.touched), Number(row.timeout), Number(row.expires));
      assert.equal(
        row.deadline === null ? Infinity : Number(row.deadline),
        expected,
        String(row.id),
      );
    }
  });

  it('touches at most once per TOUCH_RESOLUTION_MS, and never a read-only grace copy', async () => {
    const store = await open();
    await store.create(init('s1', { timeout: 10 }), T0);
    await store.getVar('s1', 'a', T0 + 999);
    assert.equal((await store.get('s1', T0 + 999, { touch: false, vars: false }))?.touched, T0);
    await store.getVar('s1', 'a', T0 + 1000);
    const record = await store.get('s1', T0 + 1500, { touch: true, vars: true });
    assert.equal(record?.touched, T0 + 1000);
    assert.equal(
      (await store.get('s1', T0 + 2000, { touch: true, vars: false }))?.touched,
      T0 + 2000,
    );

    assert.equal(await store.regenerate('s1', 's2', 5000, T0 + 3000), 'ok');
    assert.equal(await store.touch('s1', T0 + 4000), true);
    await store.getVar('s1', 'a', T0 + 4500);
    const old = await store.get('s1', T0 + 4500, { touch: true, vars: false });
    assert.equal(old?.readonly, true);
    assert.equal(old?.touched, T0 + 2000);
  });

  it('inc answers notint for large, binary and out-of-range values without failing', async () => {
    const store = await open();
    await store.create(init('s1'), T0);
    for (const bad of ['9'.repeat(70_000), '1\0', '\xff1', '12345678901234567890', '٣']) {
      await store.setVars('s1', [['n', bad]], T0, LIMITS);
      assert.equal(await store.incVar('s1', 'n', 1n, T0, LIMITS), 'notint');
    }
    await store.setVars('s1', [['n', '-9223372036854775808']], T0, LIMITS);
    assert.equal(await store.incVar('s1', 'n', -1n, T0, LIMITS), 'notint');
    assert.equal(await store.incVar('s1', 'n', 2n ** 64n, T0, LIMITS), 'notint');
    assert.equal(await store.incVar('s1', 'n', 2n ** 64n - 1n, T0, LIMITS), 9223372036854775807n);
  });

  it('indexes values of any size for find (the index keys on their digest)', async () => {
    const store = await open({ indexedVars: ['big'] });
    const big = 'x'.repeat(64 * 1024);
    await store.create(init('s1'), T0);
    await store.create(init('s2'), T0);
    assert.equal(await store.setVars('s1', [['big', big]], T0, LIMITS), 'ok');
    assert.equal(await store.setVars('s2', [['big', `${big}y`]], T0, LIMITS), 'ok');
    assert.deepEqual(await store.find('big', big, T0), ['s1']);
  });

  it('indexes only the indexedVars names, and re-flags stored variables when the option changes', async () => {
    const first = await open({ indexedVars: [] });
    const S = quoteSchema(first.schema);
    await first.create(init('s1'), T0);
    await first.setVars(
      's1',
      [
        ['cart', 'x'],
        ['color', 'red'],
      ],
      T0,
      LIMITS,
    );
    const client = await connect();
    const flags = async () =>
      (
        await client.query<{ name: Buffer; indexed: boolean }>(
          `SELECT name, indexed FROM ${S}.vars ORDER BY name`,
        )
      ).rows.map((row) => [String(row.name), row.indexed]);
    assert.deepEqual(await flags(), [
      ['cart', false],
      ['color', false],
    ]);
    const second = await sibling(first, { indexedVars: ['cart'] });
    assert.deepEqual(await flags(), [
      ['cart', true],
      ['color', false],
    ]);
    assert.deepEqual(await second.find('cart', 'x', T0), ['s1']);
    assert.deepEqual(await second.find('color', 'red', T0), ['s1']);
    await sibling(first, { indexedVars: 'all' });
    assert.deepEqual(await flags(), [
      ['cart', true],
      ['color', true],
    ]);
  });

  it('sweep() removes at most `limit` expired sessions with their variables, earliest first', async () => {
    const store = await open();
    for (let i = 0; i < 5; i++) {
      await store.create(init(`e${i}`, { timeout: i + 1, cls: `c${i}` }), T0);
      await store.setVars(`e${i}`, [['a', '1']], T0, LIMITS);
    }
    await store.create(init('live', { timeout: 0 }), T0);
    const now = T0 + 10_000;
    assert.deepEqual(await store.sweep(now, 2), [
      { id: 'e0', cls: 'c0' },
      { id: 'e1', cls: 'c1' },
    ]);
    assert.equal((await store.sweep(now, 10)).length, 3);
    assert.deepEqual(await store.sweep(now, 10), []);
    const client = await connect();
    const S = quoteSchema(store.schema);
    const { rows } = await client.query<{ s: number; v: number }>(
      `SELECT (SELECT count(*) FROM ${S}.sessions)::int AS s, (SELECT count(*) FROM ${S}.vars)::int AS v`,
    );
    assert.deepEqual({ ...rows[0] }, { s: 1, v: 0 });
  });

  it('list() pages past a backlog of expired rows without ever returning cursor "0" early', async () => {
    const store = await open();
    const live = ['b', 'm', 'z'];
    for (let i = 0; i < 40; i++)
      await store.create(init(`e${String(i).padStart(2, '0')}`, { timeout: 1 }), T0);
    for (const id of live) await store.create(init(id, { timeout: 0 }), T0);
    const now = T0 + 5000;
    const seen: string[] = [];
    let cursor = '0';
    let pages = 0;
    do {
      const page = await store.list(now, { cursor, count: 1 });
      assert.ok(page.ids.length <= 1);
      seen.push(...page.ids);
      cursor = page.cursor;
      pages++;
    } while (cursor !== '0' && pages < 100);
    assert.deepEqual(seen.sort(), live);
    assert.ok(pages > live.length, 'the expired rows cost extra, bounded, pages');
  });

  it('a closed store rejects every call, and close() may be called twice', async () => {
    const store = await PostgresStore.open({ url: URL, schema: freshSchema(), poolSize: 1 });
    await store.create(init('s1'), T0);
    await store.close();
    await store.close();
    await assert.rejects(store.getVar('s1', 'a', T0), /closed/);
    await assert.rejects(store.sweep(T0, 10), /closed/);
    await assert.rejects(store.tryLeadSweep(), /closed/);
  });
});

describe('PostgresStore shared by two servers', () => {
  it('concurrent inc from two servers ends on the exact total', async () => {
    const a = await open();
    const b2 = await sibling(a);
    await a.create(init('s1'), T0);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b2).incVar('s1', 'hits', 1n, T0, LIMITS)),
    );
    assert.equal(await a.getVar('s1', 'hits', T0), '200');
    assert.deepEqual(
      results.map(Number).sort((x, y) => x - y),
      Array.from({ length: 200 }, (_, i) => i + 1),
    );
  });

  it('concurrent setVars from two servers never pass maxVars together', async () => {
    const a = await open();
    const b2 = await sibling(a);
    await a.create(init('s1'), T0);
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b2).setVars('s1', [[`k${i}`, 'v']], T0, { maxVars: 10 }),
      ),
    );
    assert.equal(outcomes.filter((outcome) => outcome === 'ok').length, 10);
    assert.equal((await a.get('s1', T0, { touch: false, vars: true }))?.vars.size, 10);
  });

  it('two servers never hold a lock together, and keys keep increasing', async () => {
    const a = await open();
    const b2 = await sibling(a);
    await a.create(init('s1', { timeout: 0 }), T0);
    let holders = 0;
    let most = 0;
    const keys: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const store = i % 2 ? a : b2;
        for (;;) {
          const got = await store.lock('s1', 60_000, T0);
          assert.notEqual(got, 'nosession');
          if (got !== 'nosession' && got.acquired) {
            holders++;
            most = Math.max(most, holders);
            keys.push(got.key);
            await new Promise((resolve) => setImmediate(resolve));
            holders--;
            assert.equal(await store.unlock('s1', got.key, T0), true);
            return;
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
      }),
    );
    assert.equal(most, 1);
    assert.deepEqual(
      keys,
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
  });

  it('two servers sweeping at once report each expired session exactly once', async () => {
    const a = await open();
    const b2 = await sibling(a);
    const client = await connect();
    const S = quoteSchema(a.schema);
    await client.query(
      `INSERT INTO ${S}.sessions (id, cls, data, created, touched, timeout, expires)
       SELECT convert_to('e' || g, 'UTF8'), 'app', '', $1::bigint, $1::bigint, 1, 0
       FROM generate_series(1, 600) g`,
      [T0],
    );
    await client.query(
      `INSERT INTO ${S}.vars (sid, name, value, indexed) SELECT id, 'a', '1', false FROM ${S}.sessions`,
    );
    const reported: string[] = [];
    const sweeper = async (store: PostgresStore) => {
      for (;;) {
        const batch = await store.sweep(T0 + 5000, 25);
        if (batch.length === 0) return;
        reported.push(...batch.map((expired) => expired.id));
      }
    };
    await Promise.all([sweeper(a), sweeper(b2), sweeper(a), sweeper(b2)]);
    assert.equal(reported.length, 600);
    assert.equal(new Set(reported).size, 600);
    const { rows } = await client.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM ${S}.sessions) + (SELECT count(*) FROM ${S}.vars) AS n`,
    );
    assert.equal(Number(rows[0]?.n), 0);
  });

  it('one server at a time leads the sweep, and another takes over when it resigns or closes', async () => {
    const a = await open();
    const b2 = await sibling(a);
    const c = await sibling(a);
    assert.equal(await a.tryLeadSweep(), true);
    assert.equal(await b2.tryLeadSweep(), false);
    assert.equal(await a.tryLeadSweep(), true);
    await a.resignSweep();
    assert.equal(await b2.tryLeadSweep(), true);
    assert.equal(await a.tryLeadSweep(), false);
    await b2.close();
    assert.equal(await c.tryLeadSweep(), true);
    assert.equal(await a.tryLeadSweep(), false);
  });

  it("every server's subscribers hear each event exactly once, whichever server produced it", async () => {
    const a = await open();
    const b2 = await sibling(a);
    const clock = new ManualClock();
    const engines = [new Engine({ store: a, clock }), new Engine({ store: b2, clock })];
    await Promise.all(engines.map((engine) => engine.ready()));
    const heard: SessionEvent[][] = [[], []];
    engines.forEach((engine, i) => engine.subscribe((event) => heard[i]!.push(event)));

    await engines[0]!.create('s1');
    await engines[1]!.set('s1', 'a', '1');
    await engines[1]!.destroy('s1');
    await engines[0]!.create('s2', { timeout: 1 });
    clock.advance(1000);
    await engines[1]!.gc();
    // A last event from each server: once both have arrived everywhere, so has everything before.
    const markers: StoreEvent[] = [
      { type: 'empty', count: 100 },
      { type: 'empty', count: 200 },
    ];
    await a.events!.publish(markers[0]!);
    await b2.events!.publish(markers[1]!);
    const key = (event: SessionEvent) => JSON.stringify(event);
    for (const list of heard) {
      await until(
        () => markers.every((marker) => list.some((event) => key(event) === key(marker))),
        'the markers',
      );
    }
    const expected = (
      [
        { type: 'created', id: 's1' },
        { type: 'updated', id: 's1' },
        { type: 'destroyed', id: 's1' },
        { type: 'created', id: 's2' },
        { type: 'expired', id: 's2' },
        { type: 'gc', count: 1 },
        ...markers,
      ] satisfies SessionEvent[]
    )
      .map(key)
      .sort();
    assert.deepEqual(heard[0]!.map(key).sort(), expected);
    assert.deepEqual(heard[1]!.map(key).sort(), expected);
    for (const engine of engines) await engine.close();
  });

  it('a server hears its own events at once, before the round trip to the database', async () => {
    const store = await open();
    const heard: StoreEvent[] = [];
    const stop = await store.events!.subscribe((event) => heard.push(event));
    const publishing = store.events!.publish({ type: 'created', id: 'x' });
    assert.deepEqual(heard, [{ type: 'created', id: 'x' }]);
    await publishing;
    await stop();
    await store.events!.publish({ type: 'created', id: 'y' });
    assert.equal(heard.length, 1);
  });

  it('events keep every byte of their ids on the way between servers', async () => {
    const a = await open();
    const b2 = await sibling(a);
    const heard: StoreEvent[] = [];
    await b2.events!.subscribe((event) => heard.push(event));
    const event: StoreEvent = { type: 'regenerated', id: 'n\0\xff\x80"\\', oldId: '\u00e9\x7f' };
    await a.events!.publish(event);
    await until(() => heard.length > 0, 'the event');
    assert.deepEqual(heard, [event]);
  });

  it('drops a NOTIFY on its channel that was not sealed with the schema key', async () => {
    const a = await open();
    const b2 = await sibling(a);
    const heard: StoreEvent[] = [];
    await a.events!.subscribe((event) => heard.push(event));
    const client = await connect();
    const channel = `${a.schema}_events`;
    for (const payload of [
      'not base64 at all',
      Buffer.alloc(64).toString('base64'),
      JSON.stringify({ o: 'x', e: { type: 'destroyed', id: 'forged' } }),
    ])
      await client.query('SELECT pg_notify($1, $2)', [channel, payload]);
    await b2.events!.publish({ type: 'gc', count: 3 });
    await until(() => heard.length > 0, 'the event');
    assert.deepEqual(heard, [{ type: 'gc', count: 3 }]);
  });

  it('a role that may LISTEN but not read the schema never sees a session id', async () => {
    const a = await open();
    const client = await connect();
    const payloads: string[] = [];
    client.on('notification', (message) => payloads.push(message.payload ?? ''));
    await client.query(`LISTEN "${a.schema}_events"`);
    await a.events!.publish({ type: 'created', id: 'secret-session-id' });
    await until(() => payloads.length > 0, 'the payload');
    assert.doesNotMatch(payloads[0]!, /secret/);
    assert.doesNotMatch(Buffer.from(payloads[0]!, 'base64').toString('latin1'), /secret/);
  });
});

after(async () => {
  await previous?.close().catch(() => {});
  for (const store of opened) await store.close().catch(() => {});
  for (const client of clients) await client.end().catch(() => {});
  // Drops every schema the tests made with it.
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin.end();
});
