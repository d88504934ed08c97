import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { SessionEvent } from '../../core/events.ts';
import type { SessionOptions } from '../options.ts';
import { BACKINGS, rawRequest, useBacking, type Route } from '../test-support.ts';

/** The routes most tests share: read, write, and see what is stored. */
const ROUTES: Record<string, Route> = {
  '/get': (session, q) => session.get(q.get('name')!) ?? null,
  '/set': (session, q) => {
    session.set(q.get('name')!, JSON.parse(q.get('value')!));
    return 'ok';
  },
  '/names': (session) => session.names(),
  '/nothing': () => 'nothing',
};

for (const make of BACKINGS) {
  describe(`web layer over node:http (${make.name})`, () => {
    const context = useBacking(make);
    const app = (options: Partial<SessionOptions> = {}, routes = ROUTES) =>
      context.app(options, routes);

    /** Records the engine's events while `body` runs. */
    async function eventsDuring(body: () => Promise<unknown>): Promise<SessionEvent[]> {
      const events: SessionEvent[] = [];
      const stop = context.backing.engine.subscribe((event) => events.push(event));
      try {
        await body();
      } finally {
        stop();
      }
      return events;
    }

    it('a visitor who never writes costs no store write and gets no cookie', async () => {
      const { browser, sessions } = await app({ className: 'lazy' });
      let response: Response | undefined;
      const events = await eventsDuring(async () => {
        response = await browser.fetch('/get?name=cart');
        assert.equal(await response.text(), 'null');
      });
      assert.deepEqual(events, []);
      assert.deepEqual(response!.headers.getSetCookie(), []);
      assert.equal(await sessions.count(), 0);
    });

    it('a first write creates the session, sets a cookie, and the next request reads it back', async () => {
      const { browser, sessions } = await app({ className: 'first' });
      const response = await browser.fetch('/set?name=cart&value=["apple","pear"]');
      const [cookie] = response.headers.getSetCookie();
      assert.match(cookie!, /^sessiond=[A-Za-z0-9]{32}; Path=\/; HttpOnly; SameSite=Lax$/);
      assert.deepEqual(JSON.parse(await browser.text('/get?name=cart')), ['apple', 'pear']);
      assert.equal(await sessions.count(), 1);
    });

    it('a request that changes nothing sends no cookie again and writes nothing', async () => {
      const { browser } = await app({ className: 'quiet' });
      await browser.fetch('/set?name=a&value=1');
      let response: Response | undefined;
      const events = await eventsDuring(async () => {
        response = await browser.fetch('/set?name=a&value=1');
      });
      assert.deepEqual(events, []);
      assert.deepEqual(response!.headers.getSetCookie(), []);
    });

    it('only the variables that changed are written', async () => {
      const names: Array<readonly string[] | undefined> = [];
      const stop = context.backing.engine.hooks.pre(
        'update',
        (context) => void names.push(context.names),
      );
      try {
        const { browser } = await app(
          { className: 'dirty' },
          {
            ...ROUTES,
            '/both': (session) => {
              session.set('a', 1);
              session.set('b', 1);
            },
            '/touch-b': (session) => {
              session.get('a');
              session.set('b', (session.get('b') as number) + 1);
            },
          },
        );
        await browser.fetch('/both');
        names.length = 0;
        await browser.fetch('/touch-b');
        assert.deepEqual(names, [['b']]);
      } finally {
        stop();
      }
    });

    it('a value changed in place, without set(), is saved', async () => {
      const { browser } = await app(
        { className: 'inplace' },
        {
          ...ROUTES,
          '/push': (session) => {
            (session.get('list') as string[]).push('more');
          },
        },
      );
      await browser.fetch('/set?name=list&value=["one"]');
      await browser.fetch('/push');
      assert.equal(await browser.text('/get?name=list'), '["one","more"]');
    });

    it('Unicode names and values round-trip, and other clients read them as UTF-8', async () => {
      const { browser } = await app(
        { className: 'unicode' },
        {
          ...ROUTES,
          '/unicode': (session) => {
            session.set('größe', 'héllo ✓ 😀');
            session.data = 'blob ✓';
            session.userId = 'josé';
          },
          '/read': (session) => [session.get('größe'), session.data, session.userId],
        },
      );
      await browser.fetch('/unicode');
      assert.deepEqual(JSON.parse(await browser.text('/read')), ['héllo ✓ 😀', 'blob ✓', 'josé']);
      const id = browser.jar.get('sessiond')!;
      const bytes = await context.backing.engine.get(id, Buffer.from('größe').toString('latin1'));
      assert.equal(Buffer.from(bytes!, 'latin1').toString('utf8'), '"héllo ✓ 😀"');
    });

    it('a made-up id is never adopted: the visitor gets a fresh id and the made-up one is never created', async () => {
      const { browser } = await app({ className: 'fixation' });
      const madeUp = 'AttackerChoseThisId0123456789xyz';
      browser.jar.set('sessiond', madeUp);
      const response = await browser.fetch('/set?name=role&value="user"');
      const issued = browser.jar.get('sessiond');
      assert.notEqual(issued, madeUp);
      assert.match(issued!, /^[A-Za-z0-9]{32}$/);
      assert.equal(await context.backing.engine.ctl(madeUp, 'EXIST'), 0);
      assert.equal(response.headers.getSetCookie().length, 1);
    });

    it('a stale id that is read but never written is cleared from the browser', async () => {
      const { browser } = await app({ className: 'stale' });
      browser.jar.set('sessiond', 'NoSuchSession0123456789abcdefghi');
      const response = await browser.fetch('/get?name=x');
      assert.match(response.headers.getSetCookie()[0]!, /^sessiond=; Path=\/; Max-Age=0; Expires=/);
      assert.equal(browser.jar.header(), undefined);
    });

    it('with strict mode off, an unknown id is adopted as PHPLib did', async () => {
      const { browser } = await app({ className: 'lax', strict: false });
      const chosen = 'ClientChoseThisId0123456789abcde';
      browser.jar.set('sessiond', chosen);
      await browser.fetch('/set?name=x&value=1');
      assert.equal(await context.backing.engine.ctl(chosen, 'EXIST'), 1);
      assert.equal(browser.jar.get('sessiond'), chosen);
    });

    it('a redirect does not reach the browser before the session it leads to is saved', async () => {
      const order: string[] = [];
      // A slow store: without the hold, the redirect would arrive long before this ends.
      const stopPre = context.backing.engine.hooks.pre('create', () => delay(100));
      const stopPost = context.backing.engine.hooks.post('update', () => void order.push('saved'));
      try {
        const { browser } = await app(
          { className: 'redirect' },
          {
            '/login': (session, _q, res) => {
              session.set('user', 'ada');
              res.writeHead(302, { location: '/home', 'set-cookie': 'theme=dark; Path=/' });
              res.end();
              return res;
            },
          },
        );
        const response = browser.fetch('/login').then((r) => {
          order.push('response');
          return r;
        });
        const r = await response;
        assert.deepEqual(order, ['saved', 'response']);
        assert.equal(r.status, 302);
        assert.equal(r.headers.get('location'), '/home');
        assert.equal(r.headers.getSetCookie().length, 2, "the app's cookie and the session's");
      } finally {
        stopPre();
        stopPost();
      }
    });

    it('a streamed body: headers wait for the first save, later changes are saved before the end', async () => {
      const { browser } = await app(
        { className: 'stream' },
        {
          ...ROUTES,
          '/stream': (session, _q, res) => {
            session.set('a', 1);
            res.write('part one, ');
            session.set('b', 2);
            res.end('part two');
            return res;
          },
        },
      );
      assert.equal(await browser.text('/stream'), 'part one, part two');
      assert.deepEqual(JSON.parse(await browser.text('/names')), ['a', 'b']);
    });

    it('a value changed in place while the body streams is saved before the end; an unchanged end writes nothing', async () => {
      const { browser } = await app(
        { className: 'stream-in-place' },
        {
          ...ROUTES,
          '/stream': (session, _q, res) => {
            const cart: string[] = [];
            session.set('cart', cart);
            res.write('one, ');
            // After the first save, without set(): only the final save can catch it.
            cart.push('pear');
            res.end('two');
            return res;
          },
        },
      );
      assert.equal(await browser.text('/stream'), 'one, two');
      assert.equal(await browser.text('/get?name=cart'), '["pear"]');
      const events = await eventsDuring(() => browser.text('/get?name=cart'));
      assert.deepEqual(
        events.filter((event) => event.type === 'updated'),
        [],
        'a request that changes nothing writes nothing at its end',
      );
    });

    it('a handler that throws gets a 500 and nothing it changed is saved', async () => {
      const errors: unknown[] = [];
      const { browser, sessions } = await app(
        { className: 'throws', onError: (e) => errors.push(e) },
        {
          '/boom': (session) => {
            session.set('half', 'done');
            throw new Error('boom');
          },
        },
      );
      const response = await browser.fetch('/boom');
      assert.equal(response.status, 500);
      assert.deepEqual(response.headers.getSetCookie(), []);
      assert.equal(await sessions.count(), 0);
      assert.equal(errors.length, 1);
    });

    it('URLs are relative unless the Host is allowed or a base URL is set', async () => {
      const routes: Record<string, Route> = { '/self': (session) => session.selfUrl() };
      const plain = await app({ className: 'host1' }, routes);
      const evil = await rawRequest(plain.server.port, '//evil.example/self?x=1', {
        host: 'evil.example',
      });
      // A path of two slashes stays a path: never a link to the host it names.
      assert.equal(JSON.parse(evil.body), '/evil.example/self?x=1');
      const allowed = await app({ className: 'host2', allowedHosts: ['shop.example'] }, routes);
      const good = await rawRequest(allowed.server.port, '/self', { host: 'shop.example' });
      assert.equal(JSON.parse(good.body), 'http://shop.example/self');
      const bad = await rawRequest(allowed.server.port, '/self', { host: 'evil.example' });
      assert.equal(JSON.parse(bad.body), '/self');
      const based = await app({ className: 'host3', baseUrl: 'https://www.example.org' }, routes);
      const fixed = await rawRequest(based.server.port, '/self', { host: 'evil.example' });
      assert.equal(JSON.parse(fixed.body), 'https://www.example.org/self');
    });
  });
}
