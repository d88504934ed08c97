import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSessiondError } from '../../errors.ts';
import type { SessionOptions } from '../options.ts';
import { BACKINGS, deferred, useBacking, type Route } from '../test-support.ts';

const ROUTES: Record<string, Route> = {
  '/get': (session, q) => session.get(q.get('name')!) ?? null,
  '/set': (session, q) => {
    session.set(q.get('name')!, JSON.parse(q.get('value')!));
    return 'ok';
  },
  '/login': async (session, q) => {
    await session.regenerate({ grace: Number(q.get('grace') ?? 0) });
    session.userId = q.get('user');
    return 'ok';
  },
  '/logout': async (session) => {
    await session.delete();
    return 'bye';
  },
  '/others': (session) => session.destroyOthers(),
  '/whoami': (session) => session.userId,
};

for (const make of BACKINGS) {
  describe(`session lifecycle (${make.name})`, () => {
    const context = useBacking(make);
    const app = (options: Partial<SessionOptions> = {}, routes = ROUTES) =>
      context.app(options, routes);

    it('regenerate() at login moves the session to a new id, re-sends the cookie, and the old id is gone', async () => {
      const { browser } = await app({ className: 'regen' });
      await browser.fetch('/set?name=cart&value=3');
      const before = browser.jar.get('sessiond')!;
      const response = await browser.fetch('/login?user=ada');
      const after = browser.jar.get('sessiond')!;
      assert.notEqual(after, before);
      assert.equal(response.headers.getSetCookie().length, 1);
      assert.equal(await context.backing.engine.ctl(before, 'EXIST'), 0);
      assert.equal(await browser.text('/get?name=cart'), '3');
      assert.equal(await browser.text('/whoami'), '"ada"');
    });

    it('regenerate() with grace leaves the old id readable, its late writes dropped', async () => {
      const { browser, server } = await app({ className: 'grace' });
      await browser.fetch('/set?name=cart&value=3');
      const old = browser.jar.get('sessiond')!;
      await browser.fetch('/login?user=ada&grace=30');
      const late = server.browser();
      late.jar.set('sessiond', old);
      assert.equal(await late.text('/get?name=cart'), '3');
      const write = await late.fetch('/set?name=cart&value=99');
      assert.equal(write.status, 200);
      assert.deepEqual(write.headers.getSetCookie(), []);
      assert.equal(await browser.text('/get?name=cart'), '3');
    });

    it('regenerate() on a new visitor simply means a fresh id', async () => {
      const { browser } = await app({ className: 'regen-new' });
      assert.equal(await browser.text('/login?user=bo'), '"ok"');
      assert.match(browser.jar.get('sessiond')!, /^[A-Za-z0-9]{32}$/);
      assert.equal(await browser.text('/whoami'), '"bo"');
    });

    it('delete() destroys the session and clears the cookie; a later write starts a new one', async () => {
      const { browser, sessions } = await app(
        { className: 'delete' },
        {
          ...ROUTES,
          '/logout-flash': async (session) => {
            await session.delete();
            session.set('flash', 'logged out');
          },
        },
      );
      await browser.fetch('/set?name=x&value=1');
      const id = browser.jar.get('sessiond')!;
      const response = await browser.fetch('/logout');
      assert.match(response.headers.getSetCookie()[0]!, /^sessiond=; .*Max-Age=0/);
      assert.equal(browser.jar.header(), undefined);
      assert.equal(await context.backing.engine.ctl(id, 'EXIST'), 0);
      await browser.fetch('/set?name=x&value=1');
      const second = browser.jar.get('sessiond')!;
      await browser.fetch('/logout-flash');
      const third = browser.jar.get('sessiond')!;
      assert.notEqual(third, second);
      assert.equal(await browser.text('/get?name=flash'), '"logged out"');
      assert.equal(await sessions.count(), 1);
    });

    it('userId is persisted and indexed; destroyOthers() logs out the other devices only', async () => {
      const { server, sessions } = await app({ className: 'devices' });
      const phone = server.browser();
      const laptop = server.browser();
      const other = server.browser();
      await phone.fetch('/login?user=grace');
      await laptop.fetch('/login?user=grace');
      await other.fetch('/login?user=linus');
      assert.equal((await sessions.userSessions('grace')).length, 2);
      assert.equal(await laptop.text('/others'), '1');
      assert.deepEqual(await sessions.userSessions('grace'), [laptop.jar.get('sessiond')]);
      assert.equal(await phone.text('/whoami'), 'null');
      assert.equal(await other.text('/whoami'), '"linus"');
      assert.equal(await sessions.destroyUser('linus'), 1);
    });

    it('register(), unregister() and isRegistered() behave as PHPLib', async () => {
      const { browser } = await app(
        { className: 'register' },
        {
          '/register': (session) => {
            session.register('counter', 0);
            session.register('greeting', 'hello');
            return [session.get('counter'), session.isRegistered('counter')];
          },
          '/unregister': (session) => {
            session.unregister('greeting');
            return [
              session.get('greeting'),
              session.has('greeting'),
              session.isRegistered('greeting'),
            ];
          },
          '/after': (session) => [
            session.get('greeting') ?? null,
            session.isRegistered('greeting'),
          ],
        },
      );
      assert.deepEqual(JSON.parse(await browser.text('/register')), [0, true]);
      assert.deepEqual(JSON.parse(await browser.text('/unregister')), ['hello', true, false]);
      assert.deepEqual(JSON.parse(await browser.text('/after')), [null, false]);
    });

    it('count(), gc() and empty() see live sessions only', async () => {
      const { server, sessions } = await app({ className: 'maint', idleTimeout: 60 });
      await server.browser().fetch('/set?name=x&value=1');
      await server.browser().fetch('/set?name=x&value=1');
      assert.equal(await sessions.count(), 2);
      context.backing.clock.advance(61_000);
      assert.equal(await sessions.count(), 0);
      assert.ok((await sessions.gc()) >= 2);
      await server.browser().fetch('/set?name=x&value=1');
      assert.ok((await sessions.empty()) >= 1);
      assert.equal(await sessions.count(), 0);
    });

    it('an idle session expires after idleTimeout; activity keeps it alive', async () => {
      const { browser } = await app({ className: 'idle', idleTimeout: 60 });
      await browser.fetch('/set?name=x&value=1');
      context.backing.clock.advance(50_000);
      assert.equal(await browser.text('/get?name=x'), '1');
      context.backing.clock.advance(50_000);
      assert.equal(await browser.text('/get?name=x'), '1', 'the read 50 s ago extended it');
      context.backing.clock.advance(61_000);
      const response = await browser.fetch('/get?name=x');
      assert.equal(await response.text(), 'null');
      assert.match(response.headers.getSetCookie()[0]!, /Max-Age=0/);
    });

    it('absoluteTimeout ends a session however active it is, regenerate included', async () => {
      const { browser } = await app({
        className: 'absolute',
        idleTimeout: 600,
        absoluteTimeout: 120,
      });
      await browser.fetch('/set?name=x&value=1');
      for (let i = 0; i < 3; i++) {
        context.backing.clock.advance(30_000);
        assert.equal(await browser.text('/get?name=x'), '1');
      }
      await browser.fetch('/login?user=ada');
      context.backing.clock.advance(31_000);
      assert.equal(await browser.text('/get?name=x'), 'null');
    });

    it('gc runs after a request with gc_probability, and never at probability 0', async () => {
      const ran = deferred();
      let runs = 0;
      const stop = context.backing.engine.hooks.post('gc', () => {
        runs++;
        ran.resolve();
      });
      try {
        const never = await app({ className: 'gc0', gc: { probability: 0 }, random: () => 0 });
        await never.browser.fetch('/get?name=x');
        await never.sessions.close();
        assert.equal(runs, 0);
        const always = await app({
          className: 'gc1',
          gc: { probability: 0.5 },
          random: () => 0.49,
        });
        await always.browser.fetch('/get?name=x');
        await ran.promise;
        await always.sessions.close();
        assert.equal(runs, 1);
      } finally {
        stop();
      }
    });

    it('gc runs on an interval when asked to', async () => {
      const ran = deferred();
      const stop = context.backing.engine.hooks.post('gc', () => ran.resolve());
      const { sessions } = await app({ className: 'gc-interval', gc: { intervalMs: 1 } });
      await ran.promise;
      await sessions.close();
      stop();
    });

    it("a pre hook's veto of the creation fails the request and sets no cookie", async () => {
      const stop = context.backing.engine.hooks.pre('create', () => false);
      try {
        const errors: unknown[] = [];
        const { browser } = await app({ className: 'veto', onError: (e) => errors.push(e) });
        const response = await browser.fetch('/set?name=x&value=1');
        assert.equal(response.status, 500);
        assert.deepEqual(response.headers.getSetCookie(), []);
        assert.ok(isSessiondError(errors[0], 'DENIED'));
      } finally {
        stop();
      }
    });

    it('the data blob is stored with the session and read back', async () => {
      const { browser } = await app(
        { className: 'blob' },
        {
          '/write': (session) => {
            session.data = 'opaque <payload>';
          },
          '/read': (session) => session.data,
        },
      );
      await browser.fetch('/write');
      assert.equal(await browser.text('/read'), '"opaque <payload>"');
      assert.equal(
        await context.backing.engine.getData(browser.jar.get('sessiond')!),
        'opaque <payload>',
      );
    });

    it('a value without a JSON form fails at set(), where the mistake is', async () => {
      const { browser } = await app(
        { className: 'json', onError: () => {} },
        {
          '/bigint': (session) => {
            try {
              session.set('n', 1n);
            } catch (error) {
              return error instanceof TypeError;
            }
            return false;
          },
        },
      );
      assert.equal(await browser.text('/bigint'), 'true');
    });
  });
}
