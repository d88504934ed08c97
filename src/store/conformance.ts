import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../core/clock.ts';
import { Engine } from '../core/engine.ts';
import type { Limits } from '../core/limits.ts';
import type { SessionEvent } from '../core/events.ts';
import type { ErrorCode } from '../errors.ts';
import { isSessiondError } from '../errors.ts';
import type { Store } from './types.ts';

/** Makes a fresh, empty store. `indexedVars` names the variables FIND and LISTVAR index. */
export type StoreFactory = (options: { indexedVars: readonly string[] }) => Promise<Store>;

interface Fixture {
  engine: Engine;
  clock: ManualClock;
  store: Store;
  events: SessionEvent[];
}

/** Asserts that `promise` rejects with a SessiondError of `code`. */
export async function rejectsWith(
  promise: Promise<unknown> | (() => unknown),
  code: ErrorCode,
): Promise<void> {
  await assert.rejects(
    async () => (typeof promise === 'function' ? promise() : promise),
    (e: unknown) => isSessiondError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`),
  );
}

/**
 * The store conformance suite: every operation of PROTOCOL.md through the engine, expiry
 * edges, concurrent INC and LOCK, limits at their edges and bad input. Written once; a new
 * store runs it with one call and passes it unchanged.
 *
 * @example
 * runStoreConformance('memory', async ({ indexedVars }) => new MemoryStore({ indexedVars }));
 */
export function runStoreConformance(name: string, makeStore: StoreFactory): void {
  const open: Engine[] = [];
  after(async () => {
    for (const engine of open) await engine.close().catch(() => {});
  });

  async function setup(limits: Partial<Limits> = {}): Promise<Fixture> {
    const store = await makeStore({ indexedVars: ['user', 'cart'] });
    const clock = new ManualClock();
    const engine = new Engine({ store, clock, limits, defaultTimeout: 60 });
    open.push(engine);
    const events: SessionEvent[] = [];
    engine.subscribe((event) => events.push(event));
    return { engine, clock, store, events };
  }

  describe(`store conformance: ${name}`, () => {
    describe('create, uniq, randstr, destroy', () => {
      it('create() makes a session once and answers false while it lives', async () => {
        const { engine } = await setup();
        assert.equal(await engine.create('s1'), true);
        assert.equal(await engine.create('s1'), false);
        assert.equal(await engine.ctl('s1', 'EXIST'), 1);
      });

      it('create() takes class, data and timeout', async () => {
        const { engine } = await setup();
        await engine.create('s1', { cls: 'shop', data: 'blob', timeout: 5 });
        assert.equal(await engine.getData('s1'), 'blob');
        assert.equal(await engine.timeout('s1'), 5);
        assert.equal(await engine.count('shop'), 1);
      });

      it('create() replaces a session that has expired but was not yet collected', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 10 });
        await engine.set('s1', 'a', '1');
        clock.advance(10_000);
        assert.equal(await engine.create('s1'), true);
        assert.equal(await engine.get('s1', 'a'), null);
      });

      it('uniq() creates a session under an alphanumeric id of the asked length', async () => {
        const { engine } = await setup();
        for (const length of [22, 64, 255]) {
          const id = await engine.uniq(length, { cls: 'u' });
          assert.match(id, new RegExp(`^[A-Za-z0-9]{${length}}$`));
          assert.equal(await engine.ctl(id, 'EXIST'), 1);
        }
        assert.equal(await engine.count('u'), 3);
      });

      it('uniq() refuses lengths that carry under 128 bits or exceed 255 bytes', async () => {
        const { engine } = await setup();
        await rejectsWith(engine.uniq(21), 'ERR');
        await rejectsWith(engine.uniq(256), 'ERR');
      });

      it('randstr() gives 1..4096 alphanumerics and creates nothing', async () => {
        const { engine } = await setup();
        assert.match(engine.randstr(1), /^[A-Za-z0-9]$/);
        assert.equal(engine.randstr(4096).length, 4096);
        assert.throws(
          () => engine.randstr(0),
          (e) => isSessiondError(e, 'ERR'),
        );
        assert.throws(
          () => engine.randstr(4097),
          (e) => isSessiondError(e, 'ERR'),
        );
        assert.equal(await engine.count(), 0);
      });

      it('destroy() answers true once, and the session is gone for every command', async () => {
        const { engine, events } = await setup();
        await engine.create('s1');
        assert.equal(await engine.destroy('s1'), true);
        assert.equal(await engine.destroy('s1'), false);
        await rejectsWith(engine.get('s1', 'a'), 'NOSESSION');
        await rejectsWith(engine.set('s1', 'a', '1'), 'NOSESSION');
        assert.deepEqual(
          events.map((e) => e.type),
          ['created', 'destroyed'],
        );
      });

      it('every id-taking command answers BADID for empty, over-long and forbidden ids', async () => {
        const { engine } = await setup();
        assert.equal(await engine.create('x'.repeat(255)), true);
        for (const bad of [
          '',
          'x'.repeat(256),
          'a b',
          'a;b',
          'a,b',
          'a"b',
          'a\\b',
          'a\0b',
          'a\xffb',
          'a\nb',
        ]) {
          await rejectsWith(engine.create(bad), 'BADID');
          await rejectsWith(engine.get(bad, 'n'), 'BADID');
          await rejectsWith(engine.set(bad, 'n', 'v'), 'BADID');
          await rejectsWith(engine.destroy(bad), 'BADID');
          await rejectsWith(engine.lock(bad), 'BADID');
        }
      });
    });

    describe('variables', () => {
      it('set() and get() round-trip, with get() falling back to a default', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        await engine.set('s1', 'name', 'value');
        assert.equal(await engine.get('s1', 'name'), 'value');
        assert.equal(await engine.get('s1', 'missing'), null);
        assert.equal(await engine.get('s1', 'missing', 'dflt'), 'dflt');
        await engine.set('s1', 'name', '');
        assert.equal(await engine.get('s1', 'name', 'dflt'), '');
      });

      it('keeps SQL, Lua and pattern metacharacters as plain bytes in every field', async () => {
        // Defends against injection: every store must pass these as parameters, never as code.
        const { engine } = await setup();
        const id = "o'brien--x'/**/OR/**/'1'='1";
        const hostile = [
          "'); DROP TABLE sessions; --",
          '"; DELETE FROM vars WHERE 1=1; --',
          "' OR '1'='1",
          '*?[]\\%_',
          ']] .. redis.call("FLUSHALL") .. [[',
          '$1 $$ \\0 \x00',
        ];
        await engine.create(id, { cls: hostile[0]!, data: hostile[1]! });
        await engine.create('bystander');
        for (const [i, text] of hostile.entries()) await engine.set(id, text, `${i}:${text}`);
        await engine.setUser(id, hostile[2]!);
        for (const [i, text] of hostile.entries()) {
          assert.equal(await engine.get(id, text), `${i}:${text}`);
        }
        assert.equal(await engine.getData(id), hostile[1]);
        assert.deepEqual(await engine.userSessions(hostile[2]!), [id]);
        assert.deepEqual(await engine.find(hostile[3]!, `3:${hostile[3]!}`), [id]);
        assert.deepEqual(await engine.list(hostile[0]), [id]);
        assert.equal(await engine.count(), 2);
        assert.equal(await engine.ctl('bystander', 'EXIST'), 1);
      });

      it('setMany() writes all pairs and getAll() returns every variable', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        await engine.setMany('s1', [
          ['a', '1'],
          ['b', '2'],
          ['a', '3'],
        ]);
        assert.deepEqual([...(await engine.getAll('s1'))!].sort(), [
          ['a', '3'],
          ['b', '2'],
        ]);
        assert.equal(await engine.getAll('nope'), null);
      });

      it('values, names and ids keep every byte, NUL, CR LF, 0xff, colons and digits included', async () => {
        const { engine } = await setup();
        const id = 'id:1!~';
        await engine.create(id);
        const odd: Array<[string, string]> = [
          ['3:x', '4:ab'],
          ['', 'empty name'],
          ['nul', 'a\0b'],
          ['crlf', 'line\r\nline'],
          ['high', '\xff\xfe\x80'],
          ['digits', '12:34'],
        ];
        await engine.setMany(id, odd);
        for (const [n, v] of odd) assert.equal(await engine.get(id, n), v);
        assert.deepEqual(new Map(odd), await engine.getAll(id));
      });

      it('a session with many and large variables keeps them all', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        const big = 'v'.repeat(5000);
        for (let i = 0; i < 40; i++) await engine.set('s1', `k${i}`, i % 2 ? big : String(i));
        const all = (await engine.getAll('s1'))!;
        assert.equal(all.size, 40);
        assert.equal(all.get('k1'), big);
        assert.equal(await engine.unset('s1', ['k1', 'k2', 'nope']), 2);
        assert.equal((await engine.getAll('s1'))!.size, 38);
      });

      it('unset() counts only the variables that existed', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        await engine.setMany('s1', [
          ['a', '1'],
          ['b', '2'],
        ]);
        assert.equal(await engine.unset('s1', ['a', 'c']), 1);
        assert.equal(await engine.get('s1', 'a'), null);
        await rejectsWith(engine.unset('nope', ['a']), 'NOSESSION');
      });

      it('variable commands answer NOSESSION for a missing session', async () => {
        const { engine } = await setup();
        await rejectsWith(engine.get('nope', 'a'), 'NOSESSION');
        await rejectsWith(engine.set('nope', 'a', '1'), 'NOSESSION');
        await rejectsWith(engine.inc('nope', 'a'), 'NOSESSION');
        await rejectsWith(engine.getData('nope'), 'NOSESSION');
      });
    });

    describe('inc', () => {
      it('inc() counts a missing variable as 0 and returns the new value', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        assert.equal(await engine.inc('s1', 'n'), 1n);
        assert.equal(await engine.inc('s1', 'n', 10), 11n);
        assert.equal(await engine.inc('s1', 'n', -20n), -9n);
        assert.equal(await engine.get('s1', 'n'), '-9');
      });

      it('inc() answers NOTINT for values that are not canonical integers', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        for (const bad of ['abc', '1.5', ' 1', '01', '+1', '', '-0', '1e3']) {
          await engine.set('s1', 'n', bad);
          await rejectsWith(engine.inc('s1', 'n'), 'NOTINT');
          assert.equal(await engine.get('s1', 'n'), bad);
        }
      });

      it('inc() stops at the signed 64-bit edges with NOTINT', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        await engine.set('s1', 'n', '9223372036854775806');
        assert.equal(await engine.inc('s1', 'n'), 9223372036854775807n);
        await rejectsWith(engine.inc('s1', 'n'), 'NOTINT');
        await engine.set('s1', 'm', '-9223372036854775807');
        assert.equal(await engine.inc('s1', 'm', -1), -9223372036854775808n);
        await rejectsWith(engine.inc('s1', 'm', -1), 'NOTINT');
        await rejectsWith(engine.inc('s1', 'x', 2n ** 63n), 'NOTINT');
      });

      it('200 concurrent inc() callers end on the exact total', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        const results = await Promise.all(
          Array.from({ length: 200 }, () => engine.inc('s1', 'hits')),
        );
        assert.equal(await engine.get('s1', 'hits'), '200');
        assert.deepEqual(
          results.map(Number).sort((a, b) => a - b),
          Array.from({ length: 200 }, (_, i) => i + 1),
        );
      });
    });

    describe('data', () => {
      it('setData() creates a missing session and getData() reads it back', async () => {
        const { engine, events } = await setup();
        assert.equal(await engine.setData('s1', 'first'), true);
        assert.equal(await engine.setData('s1', 'second'), false);
        assert.equal(await engine.getData('s1'), 'second');
        assert.deepEqual(
          events.map((e) => e.type),
          ['created', 'updated'],
        );
      });

      it('getData() of a session whose data was never set is empty', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        assert.equal(await engine.getData('s1'), '');
      });
    });

    describe('find, listvar, list, count', () => {
      for (const variable of ['user', 'color']) {
        const kind = variable === 'user' ? 'an indexed' : 'an unindexed';
        it(`find() and listVar() on ${kind} name see only live sessions with the current value`, async () => {
          const { engine, clock } = await setup();
          await engine.create('a');
          await engine.create('b');
          await engine.create('c', { timeout: 5 });
          await engine.set('a', variable, 'x');
          await engine.set('b', variable, 'y');
          await engine.set('c', variable, 'x');
          assert.deepEqual((await engine.find(variable, 'x')).sort(), ['a', 'c']);
          clock.advance(5000);
          assert.deepEqual(await engine.find(variable, 'x'), ['a']);
          await engine.set('a', variable, 'y');
          assert.deepEqual(await engine.find(variable, 'x'), []);
          assert.deepEqual((await engine.find(variable, 'y')).sort(), ['a', 'b']);
          assert.deepEqual((await engine.listVar(variable)).sort(), [
            ['a', 'y'],
            ['b', 'y'],
          ]);
          await engine.inc('b', variable).catch(() => {});
          await engine.unset('b', [variable]);
          await engine.destroy('a');
          assert.deepEqual(await engine.listVar(variable), []);
        });
      }

      it('list() returns every live session, of one class when asked', async () => {
        const { engine, clock } = await setup();
        await engine.create('a', { cls: 'x' });
        await engine.create('b', { cls: 'y' });
        await engine.create('c', { cls: 'x', timeout: 1 });
        assert.deepEqual((await engine.list()).sort(), ['a', 'b', 'c']);
        assert.deepEqual((await engine.list('x')).sort(), ['a', 'c']);
        clock.advance(1000);
        assert.deepEqual((await engine.list()).sort(), ['a', 'b']);
      });

      it('scan() pages through every session exactly once and ends on cursor "0"', async () => {
        const { engine } = await setup();
        const all = Array.from({ length: 53 }, (_, i) => `s${i}`);
        for (const id of all)
          await engine.create(id, { cls: Number(id.slice(1)) % 2 ? 'odd' : 'even' });
        const seen: string[] = [];
        let cursor = '0';
        let pages = 0;
        do {
          const page = await engine.scan(cursor, { count: 7 });
          assert.ok(page.ids.length <= 7);
          seen.push(...page.ids);
          cursor = page.cursor;
          pages++;
        } while (cursor !== '0' && pages < 100);
        assert.deepEqual(seen.sort(), all.sort());
        const odd: string[] = [];
        cursor = '0';
        do {
          const page = await engine.scan(cursor, { count: 5, cls: 'odd' });
          odd.push(...page.ids);
          cursor = page.cursor;
        } while (cursor !== '0');
        assert.equal(odd.length, 26);
      });

      it('scan() refuses a bad cursor with ERR and a page over maxListCount with LIMIT', async () => {
        const { engine } = await setup({ maxListCount: 10 });
        await engine.create('a');
        await rejectsWith(engine.scan('not-a-cursor'), 'ERR');
        assert.deepEqual((await engine.scan('0', { count: 10 })).ids, ['a']);
        await rejectsWith(engine.scan('0', { count: 11 }), 'LIMIT');
        await rejectsWith(engine.scan('0', { count: 0 }), 'ERR');
      });

      it('count() counts live sessions by class, leaving out expired ones before any sweep', async () => {
        const { engine, clock } = await setup();
        await engine.create('a', { cls: 'x', timeout: 10 });
        await engine.create('b', { cls: 'x', timeout: 20 });
        await engine.create('c', { cls: 'y', timeout: 20 });
        assert.equal(await engine.count(), 3);
        assert.equal(await engine.count('x'), 2);
        assert.equal(await engine.count('none'), 0);
        clock.advance(10_000);
        assert.equal(await engine.count('x'), 1);
        assert.equal(await engine.count(), 2);
      });
    });

    describe('expiry', () => {
      it('a session lives until the last millisecond of its idle timeout and not one more', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 30 });
        clock.advance(29_999);
        assert.equal(await engine.ctl('s1', 'EXIST'), 1);
        clock.advance(1);
        assert.equal(await engine.ctl('s1', 'EXIST'), 0);
        await rejectsWith(engine.get('s1', 'a'), 'NOSESSION');
      });

      it('reads and writes extend the idle timeout; CTL and metadata reads do not', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 10 });
        clock.advance(8000);
        await engine.get('s1', 'a');
        clock.advance(8000);
        await engine.set('s1', 'a', '1');
        clock.advance(8000);
        assert.equal(await engine.ctl('s1', 'TLA'), 8);
        await engine.timeout('s1');
        await engine.getUser('s1');
        clock.advance(2000);
        assert.equal(await engine.ctl('s1', 'EXIST'), 0);
      });

      it('timeout 0 never idle-expires', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 0 });
        clock.advance(10 * 365 * 86_400_000);
        assert.equal(await engine.get('s1', 'a', 'alive'), 'alive');
        assert.equal(await engine.ctl('s1', 'TTL'), -1);
      });

      it('expire() sets an absolute deadline that access does not extend, and persist() lifts it', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 0 });
        assert.equal(await engine.expire('s1', 5), true);
        assert.equal(await engine.ctl('s1', 'TTL'), 5);
        clock.advance(4999);
        await engine.get('s1', 'a');
        clock.advance(1);
        assert.equal(await engine.ctl('s1', 'EXIST'), 0);
        await engine.create('s2', { timeout: 0 });
        await engine.expire('s2', 5);
        assert.equal(await engine.persist('s2'), true);
        clock.advance(10_000);
        assert.equal(await engine.ctl('s2', 'EXIST'), 1);
        assert.equal(await engine.expire('nope', 5), false);
        assert.equal(await engine.persist('nope'), false);
      });

      it('expire() with 0 seconds ends the session now', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        assert.equal(await engine.expire('s1', 0), true);
        assert.equal(await engine.ctl('s1', 'EXIST'), 0);
      });

      it('the earlier of idle and absolute expiry wins', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 10 });
        await engine.expire('s1', 100);
        assert.equal(await engine.ctl('s1', 'TTL'), 10);
        clock.advance(10_000);
        assert.equal(await engine.ctl('s1', 'EXIST'), 0);
      });

      it('gc() removes exactly the expired sessions, announcing each', async () => {
        const { engine, clock, events } = await setup();
        for (let i = 0; i < 30; i++) await engine.create(`s${i}`, { timeout: i < 20 ? 5 : 50 });
        clock.advance(5000);
        assert.equal(await engine.gc(), 20);
        assert.equal(await engine.gc(), 0);
        assert.equal(await engine.count(), 10);
        assert.equal(events.filter((e) => e.type === 'expired').length, 20);
        assert.deepEqual(events.at(-1), { type: 'gc', count: 0 });
      });

      it('gc() finds sessions whose deadline moved earlier or later after they were scheduled', async () => {
        const { engine, clock } = await setup();
        await engine.create('later', { timeout: 5 });
        await engine.create('earlier', { timeout: 500 });
        await engine.create('never', { timeout: 5 });
        await engine.timeout('never', 0);
        await engine.timeout('earlier', 2);
        clock.advance(3000);
        await engine.touch('later');
        assert.equal(await engine.gc(), 1);
        clock.advance(4000);
        assert.equal(await engine.gc(), 0);
        clock.advance(1000);
        assert.equal(await engine.gc(), 1);
        assert.deepEqual(await engine.list(), ['never']);
      });
    });

    describe('timeout, touch, ctl', () => {
      it('timeout() reads, sets, and with a negative value restores the default', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        assert.equal(await engine.timeout('s1'), 60);
        assert.equal(await engine.timeout('s1', 120), 120);
        assert.equal(await engine.timeout('s1'), 120);
        assert.equal(await engine.timeout('s1', -1), 60);
        await rejectsWith(engine.timeout('nope'), 'NOSESSION');
        await rejectsWith(engine.timeout('nope', 5), 'NOSESSION');
      });

      it('touch() extends a live session and answers false for a missing one', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 10 });
        clock.advance(9000);
        assert.equal(await engine.touch('s1'), true);
        clock.advance(9000);
        assert.equal(await engine.ctl('s1', 'EXIST'), 1);
        assert.equal(await engine.touch('nope'), false);
      });

      it('ctl() answers EXIST, TTL, AGE, TLA, CTIME, TOUCH and NOW', async () => {
        const { engine, clock } = await setup();
        const start = clock.now();
        await engine.create('s1', { timeout: 100 });
        clock.advance(30_000);
        assert.equal(await engine.ctl('s1', 'EXIST'), 1);
        assert.equal(await engine.ctl('s1', 'TTL'), 70);
        assert.equal(await engine.ctl('s1', 'AGE'), 30);
        assert.equal(await engine.ctl('s1', 'TLA'), 30);
        assert.equal(await engine.ctl('s1', 'CTIME'), Math.floor(start / 1000));
        assert.equal(await engine.ctl('s1', 'TOUCH'), 1);
        assert.equal(await engine.ctl('s1', 'TLA'), 0);
        assert.equal(await engine.ctl('s1', 'NOW'), Math.floor(clock.now() / 1000));
        assert.equal(await engine.ctl('nope', 'EXIST'), 0);
        assert.equal(await engine.ctl('nope', 'TOUCH'), 0);
        for (const q of ['TTL', 'AGE', 'TLA', 'CTIME'] as const)
          await rejectsWith(engine.ctl('nope', q), 'NOSESSION');
      });
    });

    describe('locks', () => {
      it('lock() hands out increasing keys and refuses a second holder', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        const first = await engine.lock('s1');
        assert.ok(first.acquired);
        const second = await engine.lock('s1');
        assert.equal(second.acquired, false);
        assert.equal(await engine.unlock('s1', first.key), true);
        const third = await engine.lock('s1');
        assert.ok(third.acquired && third.key > first.key);
      });

      it('unlock() with a wrong key does nothing and says so', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        const held = await engine.lock('s1');
        assert.ok(held.acquired);
        assert.equal(await engine.unlock('s1', held.key + 1), false);
        assert.equal((await engine.lock('s1')).acquired, false);
        assert.equal(await engine.unlock('s1', held.key), true);
        assert.equal(await engine.unlock('s1', held.key), false);
      });

      it('a lease that runs out frees the lock, and the stale key can no longer unlock', async () => {
        const { engine, clock } = await setup();
        await engine.create('s1', { timeout: 0 });
        const held = await engine.lock('s1', { leaseMs: 30_000 });
        assert.ok(held.acquired);
        clock.advance(29_999);
        assert.equal((await engine.lock('s1')).acquired, false);
        clock.advance(1);
        const next = await engine.lock('s1');
        assert.ok(next.acquired && next.key > held.key);
        assert.equal(await engine.unlock('s1', held.key), false);
      });

      it('lock() with a wait gets the lock once the holder unlocks', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        const held = await engine.lock('s1');
        assert.ok(held.acquired);
        const waiting = engine.lock('s1', { waitMs: 10_000 });
        setTimeout(() => void engine.unlock('s1', held.key), 20);
        const got = await waiting;
        assert.ok(got.acquired && got.key > held.key);
      });

      it('50 concurrent lockers that wait never hold the lock together', async () => {
        const { engine } = await setup();
        await engine.create('s1', { timeout: 0 });
        let holders = 0;
        let most = 0;
        const keys: number[] = [];
        await Promise.all(
          Array.from({ length: 50 }, async () => {
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
        assert.equal(new Set(keys).size, 50);
      });

      it('lock() answers NOSESSION for a missing session and LIMIT past the lease and wait limits', async () => {
        const { engine } = await setup({ maxLeaseMs: 1000, maxLockWaitMs: 500 });
        await rejectsWith(engine.lock('nope', { leaseMs: 1000 }), 'NOSESSION');
        await engine.create('s1');
        const at = await engine.lock('s1', { leaseMs: 1000 });
        assert.ok(at.acquired);
        await engine.unlock('s1', at.key);
        await rejectsWith(engine.lock('s1', { leaseMs: 1001 }), 'LIMIT');
        assert.equal((await engine.lock('s1', { leaseMs: 1000, waitMs: 500 })).acquired, true);
        await rejectsWith(engine.lock('s1', { waitMs: 501 }), 'LIMIT');
        await rejectsWith(engine.lock('s1', { leaseMs: 0 }), 'ERR');
      });

      it('destroy() of a locked session frees its lock with it', async () => {
        const { engine } = await setup();
        await engine.create('s1');
        assert.ok((await engine.lock('s1')).acquired);
        await engine.destroy('s1');
        await engine.create('s1');
        assert.ok((await engine.lock('s1')).acquired);
      });
    });

    describe('regenerate', () => {
      it('regenerate() moves variables, data, user, class and lock to a new id and ends the old one', async () => {
        const { engine, events } = await setup();
        await engine.create('old', { cls: 'shop', timeout: 99 });
        await engine.setMany('old', [['a', '1']]);
        await engine.setData('old', 'blob');
        await engine.setUser('old', 'alice');
        const held = await engine.lock('old');
        assert.ok(held.acquired);
        const fresh = await engine.regenerate('old');
        assert.notEqual(fresh, 'old');
        assert.ok(fresh.length >= 22);
        assert.equal(await engine.get(fresh, 'a'), '1');
        assert.equal(await engine.getData(fresh), 'blob');
        assert.equal(await engine.getUser(fresh), 'alice');
        assert.equal(await engine.timeout(fresh), 99);
        assert.deepEqual(await engine.list('shop'), [fresh]);
        assert.deepEqual(await engine.userSessions('alice'), [fresh]);
        assert.equal(await engine.unlock(fresh, held.key), true);
        assert.equal(await engine.ctl('old', 'EXIST'), 0);
        assert.deepEqual(events.at(-1), { type: 'regenerated', id: fresh, oldId: 'old' });
      });

      it('regenerate() with grace leaves the old id readable but never writable, until the grace ends', async () => {
        const { engine, clock } = await setup();
        await engine.create('old');
        await engine.set('old', 'a', '1');
        const fresh = await engine.regenerate('old', { graceSeconds: 5 });
        await engine.set(fresh, 'a', '2');
        assert.equal(await engine.get('old', 'a'), '1');
        await rejectsWith(engine.set('old', 'a', '3'), 'DENIED');
        await rejectsWith(engine.inc('old', 'n'), 'DENIED');
        await rejectsWith(engine.unset('old', ['a']), 'DENIED');
        await rejectsWith(engine.setData('old', 'x'), 'DENIED');
        await rejectsWith(engine.regenerate('old'), 'DENIED');
        await rejectsWith(engine.setUser('old', 'eve'), 'DENIED');
        clock.advance(4999);
        assert.equal(await engine.ctl('old', 'EXIST'), 1);
        clock.advance(1);
        assert.equal(await engine.ctl('old', 'EXIST'), 0);
        assert.equal(await engine.get(fresh, 'a'), '2');
      });

      it('regenerate() answers NOSESSION for a missing session and LIMIT past maxGraceSeconds', async () => {
        const { engine } = await setup({ maxGraceSeconds: 10 });
        await rejectsWith(engine.regenerate('nope'), 'NOSESSION');
        await engine.create('s1');
        await rejectsWith(engine.regenerate('s1', { graceSeconds: 11 }), 'LIMIT');
        await engine.regenerate('s1', { graceSeconds: 10 });
      });
    });

    describe('users', () => {
      it('setUser(), getUser() and userSessions() keep the user index current', async () => {
        const { engine, clock } = await setup();
        await engine.create('a');
        await engine.create('b', { timeout: 5 });
        await engine.create('c');
        assert.equal(await engine.getUser('a'), null);
        await engine.setUser('a', 'alice');
        await engine.setUser('b', 'alice');
        await engine.setUser('c', 'bob');
        assert.equal(await engine.getUser('a'), 'alice');
        assert.deepEqual((await engine.userSessions('alice')).sort(), ['a', 'b']);
        clock.advance(5000);
        assert.deepEqual(await engine.userSessions('alice'), ['a']);
        await engine.setUser('a', '');
        assert.equal(await engine.getUser('a'), null);
        assert.deepEqual(await engine.userSessions('alice'), []);
        await rejectsWith(engine.setUser('nope', 'x'), 'NOSESSION');
        await rejectsWith(engine.getUser('nope'), 'NOSESSION');
      });

      it("destroyUser() ends the user's sessions but the one excepted", async () => {
        const { engine, events } = await setup();
        for (const id of ['a', 'b', 'c', 'd']) {
          await engine.create(id);
          await engine.setUser(id, id === 'd' ? 'bob' : 'alice');
        }
        assert.equal(await engine.destroyUser('alice', 'b'), 2);
        assert.deepEqual(await engine.userSessions('alice'), ['b']);
        assert.deepEqual(await engine.userSessions('bob'), ['d']);
        assert.equal(events.filter((e) => e.type === 'destroyed').length, 2);
        assert.equal(await engine.destroyUser('nobody'), 0);
      });
    });

    describe('empty', () => {
      it('empty() removes every session and reports how many were live', async () => {
        const { engine, clock, events } = await setup();
        await engine.create('a');
        await engine.create('b', { timeout: 1 });
        await engine.setUser('a', 'alice');
        clock.advance(1000);
        assert.equal(await engine.empty(), 1);
        assert.equal(await engine.count(), 0);
        assert.deepEqual(await engine.userSessions('alice'), []);
        assert.deepEqual(events.at(-1), { type: 'empty', count: 1 });
        assert.equal(await engine.create('a'), true);
      });
    });

    describe('limits', () => {
      it('names, values and data are refused with LIMIT one byte past their limit', async () => {
        const { engine } = await setup({ maxNameBytes: 8, maxValueBytes: 16, maxDataBytes: 32 });
        await engine.create('s1');
        await engine.set('s1', 'n'.repeat(8), 'v'.repeat(16));
        await rejectsWith(engine.set('s1', 'n'.repeat(9), 'v'), 'LIMIT');
        await rejectsWith(engine.set('s1', 'n', 'v'.repeat(17)), 'LIMIT');
        await rejectsWith(engine.inc('s1', 'n'.repeat(9)), 'LIMIT');
        await engine.setData('s1', 'd'.repeat(32));
        await rejectsWith(engine.setData('s1', 'd'.repeat(33)), 'LIMIT');
        await rejectsWith(engine.create('s2', { data: 'd'.repeat(33) }), 'LIMIT');
        assert.equal(await engine.getData('s1'), 'd'.repeat(32));
      });

      it('variables per session stop at maxVars for set and inc, and nothing partial is written', async () => {
        const { engine } = await setup({ maxVars: 3 });
        await engine.create('s1');
        await engine.setMany('s1', [
          ['a', '1'],
          ['b', '2'],
          ['c', '3'],
        ]);
        await rejectsWith(engine.set('s1', 'd', '4'), 'LIMIT');
        await rejectsWith(engine.inc('s1', 'd'), 'LIMIT');
        await engine.set('s1', 'a', 'changed');
        assert.equal(await engine.inc('s1', 'b'), 3n);
        await engine.unset('s1', ['c']);
        await rejectsWith(
          engine.setMany('s1', [
            ['x', '1'],
            ['y', '2'],
          ]),
          'LIMIT',
        );
        assert.equal(await engine.get('s1', 'x'), null);
        assert.equal((await engine.getAll('s1'))!.size, 2);
      });

      it('class and user names stop at their limits; timeouts past maxTimeoutSeconds too', async () => {
        const { engine } = await setup({
          maxClassBytes: 4,
          maxUserBytes: 4,
          maxTimeoutSeconds: 100,
        });
        await engine.create('s1', { cls: 'abcd', timeout: 100 });
        await rejectsWith(engine.create('s2', { cls: 'abcde' }), 'LIMIT');
        await engine.setUser('s1', 'wxyz');
        await rejectsWith(engine.setUser('s1', 'vwxyz'), 'LIMIT');
        await rejectsWith(engine.timeout('s1', 101), 'LIMIT');
        await rejectsWith(engine.expire('s1', 101), 'LIMIT');
        await rejectsWith(engine.create('s3', { cls: 'abc', timeout: 1.5 }), 'NOTINT');
      });

      it('the id length limit can be lowered and is enforced at its edge', async () => {
        const { engine } = await setup({ maxIdBytes: 40 });
        assert.equal(await engine.create('i'.repeat(40)), true);
        await rejectsWith(engine.create('i'.repeat(41)), 'BADID');
        await rejectsWith(engine.uniq(41), 'ERR');
      });
    });

    describe('whole-result limits (maxResultIds)', () => {
      const MAX = 3;

      /** The message of the LIMIT `promise` rejects with. */
      async function limitMessage(promise: Promise<unknown>): Promise<string> {
        try {
          await promise;
        } catch (error) {
          if (isSessiondError(error, 'LIMIT')) return error.message;
          throw error;
        }
        return assert.fail('expected LIMIT');
      }

      it('list() answers exactly maxResultIds live ids, and LIMIT pointing to LIST CURSOR at one more', async () => {
        const { engine, clock } = await setup({ maxResultIds: MAX });
        for (const id of ['a', 'b', 'c']) await engine.create(id, { cls: 'x' });
        // Expired but not yet swept: not a result, so not counted against the limit.
        await engine.create('gone', { cls: 'x', timeout: 1 });
        clock.advance(1000);
        assert.deepEqual((await engine.list()).sort(), ['a', 'b', 'c']);
        await engine.create('d', { cls: 'y' });
        const message = await limitMessage(engine.list());
        assert.match(message, /maxResultIds/);
        assert.match(message, /LIST CURSOR/);
        assert.deepEqual((await engine.list('x')).sort(), ['a', 'b', 'c']);
        await engine.create('e', { cls: 'x' });
        await rejectsWith(engine.list('x'), 'LIMIT');
        const paged: string[] = [];
        let cursor = '0';
        do {
          const page = await engine.scan(cursor, { count: 2 });
          paged.push(...page.ids);
          cursor = page.cursor;
        } while (cursor !== '0');
        assert.deepEqual(paged.sort(), ['a', 'b', 'c', 'd', 'e']);
      });

      for (const variable of ['user', 'color']) {
        const kind = variable === 'user' ? 'an indexed' : 'an unindexed';
        it(`find() on ${kind} name answers exactly maxResultIds ids, and LIMIT at one more`, async () => {
          const { engine, clock } = await setup({ maxResultIds: MAX });
          for (const id of ['a', 'b', 'c', 'other']) {
            await engine.create(id);
            await engine.set(id, variable, id === 'other' ? 'y' : 'x');
          }
          await engine.create('gone', { timeout: 1 });
          await engine.set('gone', variable, 'x');
          clock.advance(1000);
          assert.deepEqual((await engine.find(variable, 'x')).sort(), ['a', 'b', 'c']);
          await engine.set('other', variable, 'x');
          assert.match(await limitMessage(engine.find(variable, 'x')), /maxResultIds/);
          assert.deepEqual(await engine.find(variable, 'y'), []);
        });

        it(`listVar() on ${kind} name answers exactly maxResultIds pairs, and LIMIT at one more`, async () => {
          const { engine, clock } = await setup({ maxResultIds: MAX });
          // Different values, so an index kept by value is read across several of them.
          for (const [id, value] of [
            ['a', '1'],
            ['b', '2'],
            ['c', '1'],
          ]) {
            await engine.create(id!);
            await engine.set(id!, variable, value!);
          }
          await engine.create('gone', { timeout: 1 });
          await engine.set('gone', variable, '3');
          await engine.create('without');
          await engine.set('without', 'other', '1');
          clock.advance(1000);
          assert.deepEqual((await engine.listVar(variable)).sort(), [
            ['a', '1'],
            ['b', '2'],
            ['c', '1'],
          ]);
          await engine.set('without', variable, '4');
          assert.match(await limitMessage(engine.listVar(variable)), /maxResultIds/);
        });
      }

      it('userSessions() answers exactly maxResultIds ids and LIMIT at one more; destroyUser() still ends them all', async () => {
        const { engine, clock } = await setup({ maxResultIds: MAX });
        for (const id of ['a', 'b', 'c', 'd', 'e']) {
          await engine.create(id, { timeout: id === 'e' ? 1 : 60 });
          await engine.setUser(id, id === 'd' ? 'bob' : 'alice');
        }
        clock.advance(1000);
        assert.deepEqual((await engine.userSessions('alice')).sort(), ['a', 'b', 'c']);
        await engine.setUser('d', 'alice');
        assert.match(await limitMessage(engine.userSessions('alice')), /maxResultIds/);
        await engine.create('f');
        await engine.setUser('f', 'alice');
        assert.equal(await engine.destroyUser('alice', 'a'), 4);
        assert.deepEqual(await engine.userSessions('alice'), ['a']);
        // Through the destroy hooks too, which list the user's sessions themselves.
        for (const id of ['g', 'h', 'i', 'j']) {
          await engine.create(id);
          await engine.setUser(id, 'alice');
        }
        engine.hooks.pre('destroy', () => true);
        assert.equal(await engine.destroyUser('alice'), 5);
        assert.deepEqual(await engine.userSessions('alice'), []);
      });

      it('a store reads no more than the limit it is given, and everything without one', async () => {
        const { engine, store } = await setup();
        const ids = ['a', 'b', 'c', 'd', 'e'];
        for (const [i, id] of ids.entries()) {
          await engine.create(id);
          await engine.setMany(id, [
            ['user', 'x'],
            ['cart', String(i % 2)],
            ['color', 'x'],
          ]);
          await engine.setUser(id, 'alice');
        }
        const now = engine.now();
        for (const limit of [1, 2]) {
          for (const name of ['user', 'color']) {
            assert.equal((await store.find(name, 'x', now, limit)).length, limit);
            assert.equal((await store.listVar(name, now, limit)).length, limit);
          }
          assert.equal((await store.listVar('cart', now, limit)).length, limit);
          assert.equal((await store.list(now, { limit })).ids.length, limit);
          assert.equal((await store.list(now, { cls: 'default', limit })).ids.length, limit);
          assert.equal((await store.userSessions('alice', now, limit)).length, limit);
        }
        assert.deepEqual((await store.find('user', 'x', now)).sort(), ids);
        assert.deepEqual((await store.find('color', 'x', now)).sort(), ids);
        assert.equal((await store.listVar('cart', now)).length, 5);
        assert.deepEqual((await store.list(now, {})).ids.sort(), ids);
        assert.deepEqual((await store.userSessions('alice', now)).sort(), ids);
      });
    });

    describe('store lifecycle', () => {
      it('a closed store refuses further work with an error, not a hang', async () => {
        const store = await makeStore({ indexedVars: [] });
        const engine = new Engine({ store, clock: new ManualClock() });
        await engine.create('s1');
        await engine.close();
        await assert.rejects(engine.get('s1', 'a'));
      });
    });
  });
}
