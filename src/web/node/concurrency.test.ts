import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Concurrency, SessionOptions } from '../options.ts';
import { BACKINGS, deferred, useBacking, type Browser, type Route } from '../test-support.ts';

/** Lets the event loop turn, so that overlapping requests interleave between read and write. */
const yieldOnce = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Two requests in step: each waits at the gate until both have arrived. */
function gate() {
  let arrived = 0;
  const both = deferred();
  return async () => {
    if (++arrived === 2) both.resolve();
    await both.promise;
  };
}

for (const make of BACKINGS) {
  describe(`concurrent requests of one session (${make.name})`, () => {
    const context = useBacking(make);
    const app = (
      className: string,
      routes: Record<string, Route>,
      concurrency: Concurrency = 'none',
      options: Partial<SessionOptions> = {},
    ) => context.app({ className, ...options }, routes, { concurrency });

    /** A browser of `server` that already has a session of the class. */
    async function withSession(server: { browser(): Browser }): Promise<Browser> {
      const browser = server.browser();
      await browser.fetch('/start');
      assert.ok(browser.jar.get('sessiond'));
      return browser;
    }

    const start: Route = (session) => {
      session.set('n', 0);
      session.set('list', [1]);
    };
    const increment: Route = async (session) => {
      const n = session.get('n') as number;
      await yieldOnce();
      session.set('n', n + 1);
      return n + 1;
    };

    it("fifty concurrent increments in 'lock' mode lose no update", async () => {
      const { server } = await app('lock50', { '/start': start, '/inc': increment }, 'lock');
      const browser = await withSession(server);
      const responses = await Promise.all(Array.from({ length: 50 }, () => browser.fetch('/inc')));
      assert.deepEqual(
        responses.map((r) => r.status),
        Array(50).fill(200),
      );
      const seen = (await Promise.all(responses.map((r) => r.json()))) as number[];
      assert.deepEqual(
        seen.sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      const id = browser.jar.get('sessiond')!;
      assert.equal(await context.backing.engine.get(id, 'n'), '50');
    });

    it("in 'none' mode two overlapping increments of one variable lose one: what 'lock' is for", async () => {
      const meet = gate();
      const { server } = await app('none-same', {
        '/start': start,
        '/inc': async (session) => {
          const n = session.get('n') as number;
          await meet();
          session.set('n', n + 1);
        },
      });
      const browser = await withSession(server);
      await Promise.all([browser.fetch('/inc'), browser.fetch('/inc')]);
      assert.equal(await context.backing.engine.get(browser.jar.get('sessiond')!, 'n'), '1');
    });

    it("in 'none' mode two overlapping requests that change different variables both keep their change", async () => {
      const meet = gate();
      const { server } = await app('none-diff', {
        '/start': start,
        '/set': async (session, q) => {
          session.get('n');
          await meet();
          session.set(q.get('name')!, true);
        },
      });
      const browser = await withSession(server);
      await Promise.all([browser.fetch('/set?name=a'), browser.fetch('/set?name=b')]);
      const vars = await context.backing.engine.getAll(browser.jar.get('sessiond')!);
      assert.deepEqual(Object.fromEntries(vars!), { n: '0', list: '[1]', a: 'true', b: 'true' });
    });

    for (const what of ['a variable', 'the data blob', 'the user id'] as const) {
      it(`a slower request cannot bring back a session destroyed by a logout (${what})`, async () => {
        const loaded = deferred();
        const logoutDone = deferred();
        const { server, sessions } = await app(`race-${what.length}`, {
          '/start': start,
          '/slow': async (session) => {
            loaded.resolve();
            await logoutDone.promise;
            if (what === 'a variable') session.set('late', 'write');
            else if (what === 'the data blob') session.data = 'late write';
            else session.userId = 'mallory';
          },
          '/logout': async (session) => {
            await session.delete();
          },
        });
        const browser = await withSession(server);
        const id = browser.jar.get('sessiond')!;
        const slow = browser.fetch('/slow');
        await loaded.promise;
        const logout = await browser.fetch('/logout');
        assert.match(logout.headers.getSetCookie()[0]!, /Max-Age=0/);
        logoutDone.resolve();
        const late = await slow;
        assert.equal(late.status, 200);
        assert.match(late.headers.getSetCookie()[0]!, /^sessiond=; .*Max-Age=0/);
        assert.equal(await context.backing.engine.ctl(id, 'EXIST'), 0);
        assert.equal(await sessions.count(), 0);
      });
    }

    it("'lock' mode answers 503 when another holder keeps the lock past the wait", async () => {
      const { server } = await app('busy', { '/start': start, '/inc': increment }, 'lock', {
        lock: { waitMs: 0 },
        onError: () => {},
      });
      const browser = await withSession(server);
      const id = browser.jar.get('sessiond')!;
      const held = await context.backing.engine.lock(id, { leaseMs: 60_000 });
      assert.ok(held.acquired);
      assert.equal((await browser.fetch('/inc')).status, 503);
      await context.backing.engine.unlock(id, held.key);
      assert.equal(await browser.text('/inc'), '1');
    });

    it("'lock' mode releases the lock when the handler throws and when the id is regenerated", async () => {
      const { server } = await app(
        'release',
        {
          '/start': start,
          '/inc': increment,
          '/boom': () => {
            throw new Error('boom');
          },
          '/login': async (session) => {
            await session.regenerate();
          },
        },
        'lock',
        { lock: { waitMs: 0 }, onError: () => {} },
      );
      const browser = await withSession(server);
      assert.equal((await browser.fetch('/boom')).status, 500);
      assert.equal(await browser.text('/inc'), '1');
      await browser.fetch('/login');
      assert.equal(await browser.text('/inc'), '2');
    });

    it("a 'readonly' route reads the session and refuses to change it", async () => {
      const errors: unknown[] = [];
      const { server } = await app(
        'readonly',
        {
          '/start': start,
          '/read': (session) => session.get('n'),
          '/mutate': (session) => {
            (session.get('list') as number[]).push(2);
          },
          '/write': (session) => session.set('n', 99),
        },
        'readonly',
        { onError: (e) => errors.push(e) },
      );
      const browser = server.browser();
      const first = await browser.fetch('/start');
      assert.equal(first.status, 500, 'no session can be created on a read-only route');
      const writer = await app('readonly', { '/start': start });
      const id = (await withSession(writer.server)).jar.get('sessiond')!;
      browser.jar.set('sessiond', id);
      assert.equal(await browser.text('/read'), '0');
      assert.equal((await browser.fetch('/write')).status, 500);
      assert.equal(await context.backing.engine.get(id, 'n'), '0');
      assert.equal((await browser.fetch('/mutate')).status, 200);
      assert.equal(await context.backing.engine.get(id, 'list'), '[1]', 'nor a change in place');
      assert.ok(errors.every((e) => (e as { code?: string }).code === 'DENIED'));
    });
  });
}
