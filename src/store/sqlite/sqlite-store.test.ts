import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { runStoreConformance } from '../conformance.ts';
import { deadlineOf, type SessionInit } from '../types.ts';
import { QUERIES } from './queries.ts';
import { MIGRATIONS, SCHEMA_VERSION, migrate, schemaVersion } from './schema.ts';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.ts';

const dir = mkdtempSync(join(tmpdir(), 'sessiond-sqlite-'));
let files = 0;
const opened: SqliteStore[] = [];
after(async () => {
  for (const store of opened) await store.close().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

function freshPath(): string {
  return join(dir, `store-${++files}.db`);
}

async function open(options: Partial<SqliteStoreOptions> = {}): Promise<SqliteStore> {
  const store = await SqliteStore.open({ path: freshPath(), ...options });
  opened.push(store);
  return store;
}

runStoreConformance('sqlite', ({ indexedVars }) => open({ indexedVars }));

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

/** The query plan of one of the store's own statements, as one line per step. */
function plan(db: DatabaseSync, sql: string, ...params: Array<string | number>): string {
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>;
  return rows.map((row) => row.detail).join('\n');
}

describe('SqliteStore', () => {
  it('keeps sessions, variables, data, user and lock across close and reopen', async () => {
    const path = freshPath();
    const first = await SqliteStore.open({ path });
    await first.create(init('s1', { cls: 'shop', user: 'alice', data: 'blob' }), T0);
    await first.setVars('s1', [['cart', '3 items']], T0, LIMITS);
    const held = await first.lock('s1', 30_000, T0);
    await first.close();

    const second = await SqliteStore.open({ path });
    opened.push(second);
    const record = await second.get('s1', T0 + 1, { touch: false, vars: true });
    assert.ok(record);
    assert.equal(record.cls, 'shop');
    assert.equal(record.data, 'blob');
    assert.equal(record.user, 'alice');
    assert.deepEqual([...record.vars], [['cart', '3 items']]);
    assert.ok(held !== 'nosession' && held.acquired);
    assert.deepEqual(record.lock, { key: held.key, until: held.until });
  });

  it('keeps every byte of ids, names and values across a reopen, NUL and 0xff included', async () => {
    const path = freshPath();
    const id = 'id\0\xff\x80';
    const vars: Array<[string, string]> = [
      ['n\0', 'v\0w'],
      ['\xff', '\xfe\xff\x00\x01'],
      ['', ''],
    ];
    const first = await SqliteStore.open({ path });
    await first.create(init(id, { data: 'd\0\xff', user: 'u\0\xff', cls: 'c\0' }), T0);
    await first.setVars(id, vars, T0, LIMITS);
    await first.close();

    const second = await SqliteStore.open({ path });
    opened.push(second);
    const record = await second.get(id, T0, { touch: false, vars: true });
    assert.ok(record);
    assert.equal(record.id, id);
    assert.equal(record.data, 'd\0\xff');
    assert.equal(record.user, 'u\0\xff');
    assert.equal(record.cls, 'c\0');
    assert.deepEqual(record.vars, new Map(vars));
    assert.deepEqual(await second.find('n\0', 'v\0w', T0), [id]);
    assert.deepEqual(await second.find('n\0', 'v', T0), []);
    assert.deepEqual(await second.userSessions('u\0\xff', T0), [id]);
    assert.deepEqual(await second.list(T0, { cls: 'c\0' }), { cursor: '0', ids: [id] });
  });

  it('runs each migration once and leaves a reopened file at the current user_version', async () => {
    const path = freshPath();
    const raw = new DatabaseSync(path);
    assert.equal(schemaVersion(raw), 0);
    assert.equal(migrate(raw), MIGRATIONS.length);
    assert.equal(migrate(raw), 0);
    raw.close();

    const store = await SqliteStore.open({ path });
    await store.create(init('s1'), T0);
    await store.close();
    const reopened = await SqliteStore.open({ path });
    await reopened.close();

    const check = new DatabaseSync(path);
    assert.equal(schemaVersion(check), SCHEMA_VERSION);
    assert.equal(migrate(check), 0);
    check.close();
  });

  it('refuses a file written by a newer schema instead of guessing at it', async () => {
    const path = freshPath();
    const raw = new DatabaseSync(path);
    migrate(raw);
    raw.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    await assert.rejects(SqliteStore.open({ path }), /newer/);
  });

  it("puts the file in WAL mode with synchronous=FULL by default and NORMAL for 'normal'", async () => {
    const full = await open();
    assert.deepEqual(full.settings(), {
      journalMode: 'wal',
      synchronous: 'full',
      busyTimeoutMs: 5000,
    });
    const normal = await open({ durability: 'normal', busyTimeoutMs: 250 });
    assert.deepEqual(normal.settings(), {
      journalMode: 'wal',
      synchronous: 'normal',
      busyTimeoutMs: 250,
    });
  });

  it('creates the file, and its WAL, readable by the owner only', async () => {
    const path = freshPath();
    const store = await open({ path });
    await store.create(init('s1'), T0);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
  });

  it('group commit puts 100 concurrent writes in fewer transactions than writes', async () => {
    const store = await open();
    await store.create(init('s1'), T0);
    const before = store.stats;
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => store.setVars('s1', [[`k${i}`, `${i}`]], T0, LIMITS)),
    );
    assert.ok(results.every((result) => result === 'ok'));
    const writes = store.stats.writes - before.writes;
    const commits = store.stats.commits - before.commits;
    assert.equal(writes, 100);
    assert.ok(commits >= 1 && commits < writes, `${commits} commits for ${writes} writes`);
    const record = await store.get('s1', T0, { touch: false, vars: true });
    assert.equal(record?.vars.size, 100);
  });

  it('a batch commits as soon as it holds 1000 writes, without waiting for the next turn', async () => {
    const store = await open();
    await store.create(init('s1'), T0);
    const before = store.stats.commits;
    const writes = Array.from({ length: 1000 }, (_, i) =>
      store.setVars('s1', [[`k${i}`, 'v']], T0, LIMITS),
    );
    assert.equal(store.stats.commits, before + 1);
    await Promise.all(writes);
    assert.equal(store.stats.commits, before + 1);
  });

  it('a statement that fails rolls back its whole batch and rejects every write in it', async () => {
    const path = freshPath();
    const store = await open({ path });
    await store.create(init('s1'), T0);
    const other = new DatabaseSync(path);
    other.exec(`CREATE TRIGGER boom BEFORE INSERT ON vars WHEN NEW.value = 'boom'
                BEGIN SELECT RAISE(ABORT, 'boom'); END`);
    other.close();
    const first = store.setVars('s1', [['a', '1']], T0, LIMITS);
    const failing = store.setVars('s1', [['b', 'boom']], T0, LIMITS);
    const next = store.setVars('s1', [['c', '3']], T0, LIMITS);
    await assert.rejects(first, /boom/);
    await assert.rejects(failing, /boom/);
    assert.equal(await next, 'ok');
    const record = await store.get('s1', T0, { touch: false, vars: true });
    assert.deepEqual([...(record?.vars ?? [])], [['c', '3']]);
    assert.equal(store.stats.rollbacks, 1);
  });

  it('an acknowledged write is already committed: another connection sees it', async () => {
    const path = freshPath();
    const store = await open({ path });
    await store.create(init('s1'), T0);
    await store.setVars('s1', [['a', '1']], T0, LIMITS);
    const other = new DatabaseSync(path, { readOnly: true });
    const row = other.prepare("SELECT value FROM vars WHERE sid = 's1' AND name = 'a'").get();
    other.close();
    assert.deepEqual({ ...row }, { value: '1' });
  });

  it('reads that ran inside an open batch resolve only after its commit', async () => {
    const store = await open();
    await store.create(init('s1'), T0);
    const order: string[] = [];
    const write = store.setVars('s1', [['a', '1']], T0, LIMITS).then(() => order.push('write'));
    const read = store.getVar('s1', 'a', T0).then((value) => order.push(`read ${String(value)}`));
    assert.equal(store.stats.commits, 1);
    await Promise.all([write, read]);
    assert.equal(store.stats.commits, 2);
    assert.deepEqual(order, ['write', 'read 1']);
  });

  it('sets the busy timeout, and a second writer past it gets an error rather than a hang', async () => {
    const path = freshPath();
    const holder = await open({ path });
    const waiter = await open({ path, busyTimeoutMs: 0 });
    assert.equal(waiter.settings().busyTimeoutMs, 0);
    await holder.create(init('s1'), T0);
    // The holder's batch keeps the write lock until its commit at the next turn of the loop.
    const pending = holder.setVars('s1', [['a', '1']], T0, LIMITS);
    await assert.rejects(waiter.create(init('s2'), T0), /locked|busy/i);
    await pending;
    assert.equal(await waiter.create(init('s2'), T0), true);
    assert.equal(await holder.count(T0), 2);
  });

  it('answers find, listVar, userSessions, count, list and sweep through indexes, not scans', async () => {
    const path = freshPath();
    const store = await open({ path, indexedVars: ['cart'] });
    await store.create(init('s1', { user: 'alice' }), T0);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.match(
        plan(db, QUERIES.findIndexed, T0, 'cart', 'x', 100_001),
        /SEARCH v USING COVERING INDEX vars_find \(name=\? AND value=\?\)\nSEARCH s USING PRIMARY KEY/,
      );
      assert.match(
        plan(db, QUERIES.listVarIndexed, T0, 'cart', 100_001),
        /SEARCH v USING COVERING INDEX vars_find \(name=\?\)\nSEARCH s USING PRIMARY KEY/,
      );
      // An unindexed name: a range of the primary key per statement, never the whole table.
      for (const sql of [QUERIES.findScan, QUERIES.listVarScan]) {
        assert.match(
          plan(db, sql, T0, 'color', 'red', 's1', 0, 's9', 100_001),
          /^SEARCH v USING PRIMARY KEY \(sid>\? AND sid<\?\)\nSEARCH s USING PRIMARY KEY \(id=\?\)$/,
        );
      }
      for (const sql of [QUERIES.findScanTail, QUERIES.listVarScanTail]) {
        assert.match(
          plan(db, sql, T0, 'color', 'red', 's1', 0, 's9', 100_001),
          /^SEARCH v USING PRIMARY KEY \(sid>\?\)\nSEARCH s USING PRIMARY KEY \(id=\?\)$/,
        );
      }
      assert.match(
        plan(db, QUERIES.scanRangeEnd, '', 1, 8192),
        /^SEARCH sessions USING PRIMARY KEY \(id>\?\)$/,
      );
      assert.match(
        plan(db, QUERIES.userSessions, 'alice', T0, 100_001),
        /^SEARCH sessions USING INDEX sessions_user \(user=\?\)$/,
      );
      const count = plan(db, QUERIES.countLive, T0);
      assert.match(count, /SEARCH sessions USING COVERING INDEX sessions_deadline \(deadline=\?\)/);
      assert.match(count, /SEARCH sessions USING COVERING INDEX sessions_deadline \(deadline>\?\)/);
      assert.doesNotMatch(count, /SCAN sessions/);
      assert.match(
        plan(db, QUERIES.countLiveCls, 'app', T0),
        /^SEARCH sessions USING INDEX sessions_cls \(cls=\?\)$/,
      );
      assert.match(
        plan(db, QUERIES.listPageCls, '', 1, T0, 'app'),
        /^SEARCH sessions USING INDEX sessions_cls \(cls=\? AND id>\?\)$/,
      );
      assert.match(
        plan(db, QUERIES.listPage, '', 1, T0),
        /^SEARCH sessions USING PRIMARY KEY \(id>\?\)$/,
      );
      assert.match(
        plan(db, QUERIES.selectExpired, T0, 10),
        /^SEARCH sessions USING INDEX sessions_deadline \(deadline<\?\)$/,
      );
      assert.match(
        plan(db, QUERIES.selectLive, 's1', T0),
        /^SEARCH sessions USING PRIMARY KEY \(id=\?\)$/,
      );
    } finally {
      db.close();
    }
  });

  it('indexes only the indexedVars names, and re-flags stored variables when the option changes', async () => {
    const path = freshPath();
    const first = await SqliteStore.open({ path, indexedVars: [] });
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
    await first.close();

    const flags = () => {
      const db = new DatabaseSync(path, { readOnly: true });
      const rows = db.prepare('SELECT name, indexed FROM vars ORDER BY name').all();
      db.close();
      return rows.map((row) => [row.name, row.indexed]);
    };
    assert.deepEqual(flags(), [
      ['cart', 0],
      ['color', 0],
    ]);

    const second = await SqliteStore.open({ path, indexedVars: ['cart'] });
    assert.deepEqual(flags(), [
      ['cart', 1],
      ['color', 0],
    ]);
    assert.deepEqual(await second.find('cart', 'x', T0), ['s1']);
    assert.deepEqual(await second.find('color', 'red', T0), ['s1']);
    await second.close();

    const third = await SqliteStore.open({ path, indexedVars: 'all' });
    opened.push(third);
    assert.deepEqual(flags(), [
      ['cart', 1],
      ['color', 1],
    ]);
  });

  it('stores the deadline deadlineOf gives, through create, touch, update and regenerate', async () => {
    const path = freshPath();
    const store = await open({ path });
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

    const db = new DatabaseSync(path, { readOnly: true });
    const rows = db
      .prepare('SELECT id, touched, timeout, expires, deadline FROM sessions')
      .all() as Array<{
      id: string;
      touched: number;
      timeout: number;
      expires: number;
      deadline: number | null;
    }>;
    db.close();
    assert.equal(rows.length, cases.length + 3);
    for (const row of rows) {
      const expected = deadlineOf(row.touched, row.timeout, row.expires);
      assert.equal(row.deadline ?? Infinity, expected, row.id);
    }
    const touched = rows.filter((row) => row.id.startsWith('s') && row.deadline !== T0 + 5000);
    assert.ok(touched.every((row) => row.touched === T0 + 2000));
  });

  it('sweep() removes at most `limit` expired sessions with their variables, earliest first', async () => {
    const path = freshPath();
    const store = await open({ path });
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
    const db = new DatabaseSync(path, { readOnly: true });
    const left = db
      .prepare('SELECT (SELECT count(*) FROM sessions) AS s, (SELECT count(*) FROM vars) AS v')
      .get();
    db.close();
    assert.deepEqual({ ...left }, { s: 1, v: 0 });
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

  describe('a FIND or LISTVAR of an unindexed name over more sessions than one range (8,192)', () => {
    /** Sessions '' (the empty id) and s00000 ... with `v` = their number modulo 10 ('' has 0). */
    async function filled(count: number): Promise<SqliteStore> {
      const store = await open();
      const writes: Array<Promise<unknown>> = [
        store.create(init('', { vars: new Map([['v', '0']]) }), T0),
      ];
      for (let i = 0; i < count; i++) {
        const vars = new Map([['v', String(i % 10)]]);
        writes.push(store.create(init(`s${String(i).padStart(5, '0')}`, { vars }), T0));
      }
      await Promise.all(writes);
      return store;
    }

    it('lets other commands run between its ranges', async () => {
      const store = await filled(30_000);
      const order: string[] = [];
      const scans = [
        store.find('v', '3', T0).then((ids) => order.push(`find ${ids.length}`)),
        store.listVar('v', T0).then((pairs) => order.push(`listvar ${pairs.length}`)),
      ];
      // A turn of the event loop later: while the scans are still reading.
      setImmediate(
        () => void store.getVar('s00001', 'v', T0).then((v) => order.push(`get ${String(v)}`)),
      );
      await Promise.all(scans);
      assert.equal(order[0], 'get 1');
      assert.deepEqual(order.slice(1).sort(), ['find 3000', 'listvar 30001']);
    });

    it('finds each session that is live throughout exactly once, the empty id included', async () => {
      const store = await filled(30_000);
      const found = store.find('v', '0', T0);
      let rounds = 0;
      let walking = true;
      const churn = () => {
        if (!walking) return;
        rounds++;
        // Ids that sort before, among and after the ones already read; and other sessions go.
        for (const prefix of ['a', 's1', 'z']) {
          const vars = new Map([['v', '0']]);
          void store.create(init(`${prefix}-${rounds}`, { vars }), T0);
        }
        void store.destroy(`s${String(rounds * 10 + 1).padStart(5, '0')}`, T0);
        setImmediate(churn);
      };
      setImmediate(churn);
      const ids = await found;
      walking = false;
      assert.ok(rounds >= 1, 'the store changed during the scan');
      assert.equal(new Set(ids).size, ids.length, 'no id twice');
      const steady = ids.filter((id) => id === '' || /^s\d{5}$/.test(id));
      const expected = [
        '',
        ...Array.from({ length: 3_000 }, (_, i) => `s${String(i * 10).padStart(5, '0')}`),
      ];
      assert.deepEqual(steady.sort(), expected.sort());
    });

    it('stops at exactly its limit, also across ranges', async () => {
      const store = await filled(20_000);
      assert.equal((await store.find('v', '2', T0, 1_999)).length, 1_999);
      assert.equal((await store.listVar('v', T0, 17_000)).length, 17_000);
      assert.equal((await store.listVar('v', T0)).length, 20_001);
    });
  });

  it('a write, or a read, after close() rejects, and close() may be called twice', async () => {
    const store = await SqliteStore.open({ path: freshPath() });
    await store.create(init('s1'), T0);
    const pending = store.setVars('s1', [['a', '1']], T0, LIMITS);
    await store.close();
    assert.equal(await pending, 'ok', 'close() commits what is pending first');
    await assert.rejects(store.setVars('s1', [['a', '2']], T0, LIMITS), /closed/);
    await assert.rejects(store.get('s1', T0, { touch: false, vars: false }), /closed/);
    await store.close();
  });
});
