import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { isSessiondError } from '../../errors.ts';
import type { SessionBackend } from '../backend.ts';
import { createSessions } from '../manager.ts';
import { chooseBackend, type SessionOptions } from '../options.ts';
import { BACKINGS, deferred, sessionApp, useBacking, type Route } from '../test-support.ts';

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
  '/become': (session, q) => {
    session.userId = q.get('user');
    return 'ok';
  },
  '/names': (session) => session.names(),
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

    it('renewAfter: once the id is that old the cookie changes, and the old id stays readable only for the grace', async () => {
      const { clock, engine } = context.backing;
      const { browser, server } = await app({
        className: 'renew',
        renewAfter: 600,
        renewGrace: 30,
        clock,
      });
      await browser.fetch('/set?name=cart&value=3');
      const first = browser.jar.get('sessiond')!;
      clock.advance(599_000);
      let response = await browser.fetch('/get?name=cart');
      assert.deepEqual(response.headers.getSetCookie(), [], 'not yet that old');
      clock.advance(1_000);
      // A request that only reads renews too: renewal does not wait for activity.
      response = await browser.fetch('/get?name=cart');
      assert.equal(await response.text(), '3');
      assert.equal(response.headers.getSetCookie().length, 1);
      const second = browser.jar.get('sessiond')!;
      assert.notEqual(second, first);
      assert.deepEqual(JSON.parse(await browser.text('/names')), ['cart'], 'the stamp is hidden');
      // The old id, within the grace: a read-only copy, itself never renewed.
      const late = server.browser();
      late.jar.set('sessiond', first);
      response = await late.fetch('/get?name=cart');
      assert.equal(await response.text(), '3');
      assert.deepEqual(response.headers.getSetCookie(), []);
      clock.advance(31_000);
      assert.equal(await engine.ctl(first, 'EXIST'), 0);
      assert.equal(await late.text('/get?name=cart'), 'null');
      // The new id's age counts from its renewal, not from the session's creation (REGENERATE
      // keeps CTIME), so it is not renewed again on every request.
      clock.advance(568_000);
      response = await browser.fetch('/get?name=cart');
      assert.deepEqual(response.headers.getSetCookie(), []);
      assert.equal(browser.jar.get('sessiond'), second);
      clock.advance(1_000);
      await browser.fetch('/get?name=cart');
      assert.notEqual(browser.jar.get('sessiond'), second);
      assert.equal(await browser.text('/get?name=cart'), '3');
    });

    it('renewAfter: a session from before the option was on is renewed at its next request', async () => {
      const { clock } = context.backing;
      const before = await app({ className: 'renew-late' });
      await before.browser.fetch('/set?name=cart&value=3');
      const old = before.browser.jar.get('sessiond')!;
      const after = await app({ className: 'renew-late', renewAfter: 3600, clock });
      const browser = after.server.browser();
      browser.jar.set('sessiond', old);
      assert.equal(await browser.text('/get?name=cart'), '3');
      assert.notEqual(browser.jar.get('sessiond'), old);
      const response = await browser.fetch('/get?name=cart');
      assert.deepEqual(response.headers.getSetCookie(), [], 'and then not again');
    });

    it('regenerateOnUserChange: setting userId issues a new cookie; with the option off the cookie stays', async () => {
      const { engine } = context.backing;
      let regenerations = 0;
      const stop = engine.hooks.post('regenerate', () => void regenerations++);
      try {
        const on = await app({ className: 'user-on', regenerateOnUserChange: true });
        await on.browser.fetch('/set?name=cart&value=3');
        const anonymous = on.browser.jar.get('sessiond')!;
        let response = await on.browser.fetch('/become?user=ada');
        assert.equal(response.headers.getSetCookie().length, 1);
        const ada = on.browser.jar.get('sessiond')!;
        assert.notEqual(ada, anonymous);
        assert.equal(await engine.ctl(anonymous, 'EXIST'), 0, 'the old id is gone at once');
        assert.equal(await on.browser.text('/whoami'), '"ada"');
        assert.equal(await on.browser.text('/get?name=cart'), '3');
        response = await on.browser.fetch('/become?user=ada');
        assert.deepEqual(response.headers.getSetCookie(), [], 'the same user is no change');
        await on.browser.fetch('/become');
        assert.notEqual(on.browser.jar.get('sessiond'), ada, 'logging out is a change too');
        // An app that regenerates itself at login gets one new id, not two.
        const before = regenerations;
        await on.browser.fetch('/login?user=bo');
        assert.equal(regenerations - before, 1);
        assert.equal(await on.browser.text('/whoami'), '"bo"');

        const off = await app({ className: 'user-off' });
        await off.browser.fetch('/set?name=cart&value=3');
        const kept = off.browser.jar.get('sessiond')!;
        response = await off.browser.fetch('/become?user=ada');
        assert.deepEqual(response.headers.getSetCookie(), []);
        assert.equal(off.browser.jar.get('sessiond'), kept);
        assert.equal(await off.browser.text('/whoami'), '"ada"');
      } finally {
        stop();
      }
    });

    it('onError is never given a session id: failing gc and unlock, a held lock, vetoed hooks', async () => {
      const { engine, clock } = context.backing;
      const real = chooseBackend(context.backing.options);
      // The real backend, but every UNLOCK fails as a lost connection would.
      const backend = new Proxy(real, {
        get(target, key): unknown {
          if (key === 'unlock') return () => Promise.reject(new Error('connection lost'));
          const value: unknown = Reflect.get(target, key);
          return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
        },
      }) satisfies SessionBackend;
      const errors: unknown[] = [];
      const options: SessionOptions = {
        backend,
        concurrency: 'lock',
        lock: { leaseMs: 1000, waitMs: 0 },
        gc: { probability: 1 },
        random: () => 0,
        onError: (error) => void errors.push(error),
      };
      const sessions = createSessions({ ...options, className: 'no-id' });
      const other = createSessions({ ...options, className: 'no-id-other' });
      const app = await sessionApp(sessions, ROUTES);
      const otherApp = await sessionApp(other, ROUTES);
      const stops = [
        engine.hooks.pre('gc', () => false),
        engine.hooks.pre('regenerate', () => false),
      ];
      try {
        const browser = app.browser();
        await browser.fetch('/set?name=x&value=1');
        const id = browser.jar.get('sessiond')!;
        // Locked, loaded, and the unlock at the end fails.
        assert.equal(await browser.text('/get?name=x'), '1');
        clock.advance(2_000);
        // Held by someone else past waitMs: LOCKED.
        const held = await engine.lock(id, { leaseMs: 60_000 });
        assert.equal((await browser.fetch('/get?name=x')).status, 503);
        assert.ok(held.acquired);
        await engine.unlock(id, held.key);
        // A pre hook vetoes the regenerate at login.
        assert.equal((await browser.fetch('/login?user=ada')).status, 500);
        clock.advance(2_000);
        // Another class's session: locked, found not ours (when the backend can tell the class),
        // and the unlock fails.
        const stranger = otherApp.browser();
        stranger.jar.set('sessiond', id);
        assert.equal((await stranger.fetch('/get?name=x')).status, 200);
        await Promise.all([sessions.close(), other.close()]);
        const messages = errors.map((error) => String(error));
        assert.ok(messages.some((m) => m.includes('connection lost')));
        assert.ok(messages.some((m) => /gc refused/.test(m)));
        assert.ok(errors.length >= 5);
        assert.ok(errors.some((error) => isSessiondError(error, 'LOCKED')));
        assert.ok(messages.some((m) => /regenerate refused/.test(m)));
        for (const error of errors) {
          const text = `${String(error)} ${inspect(error, { depth: 8, showHidden: true })}`;
          assert.ok(!text.includes(id.slice(0, 6)), text);
        }
      } finally {
        for (const stop of stops) stop();
        await app.close();
        await otherApp.close();
      }
    });
  });
}
