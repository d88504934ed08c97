import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { SessionEvent } from '../../core/events.ts';
import { createSessions } from '../manager.ts';
import type { SessionOptions } from '../options.ts';
import { BACKINGS, Browser, CookieJar, deferred, listen, type Backing } from '../test-support.ts';
import { honoSessions } from './index.ts';

const KEY = 'k'.repeat(32);

/** What a test asks of a request: a subset of fetch's RequestInit, served by both transports. */
interface Init {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** A browser of one app: through a real socket or through app.request(). */
interface Client {
  readonly jar: CookieJar;
  fetch(path: string, init?: Init): Promise<Response>;
  text(path: string, init?: Init): Promise<string>;
}

/** A browser that reaches the app through app.request(): Hono's fetch, no server at all. */
class RequestBrowser implements Client {
  readonly jar = new CookieJar();
  #app: Hono;

  constructor(app: Hono) {
    this.#app = app;
  }

  async fetch(path: string, init: Init = {}): Promise<Response> {
    const cookie = this.jar.header();
    const response = await this.#app.request(path, {
      ...init,
      headers: { ...(cookie !== undefined && { cookie }), ...init.headers },
    });
    this.jar.store(response.headers.getSetCookie());
    return response;
  }

  async text(path: string, init: Init = {}): Promise<string> {
    return (await this.fetch(path, init)).text();
  }
}

const servers: Server[] = [];

/** How the tests reach an app. */
const TRANSPORTS = {
  'app.request()': async (app: Hono) => () => new RequestBrowser(app),
  '@hono/node-server on port 0': async (app: Hono) => {
    const server = createAdaptorServer({ fetch: app.fetch, hostname: '127.0.0.1' }) as Server;
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    return () => new Browser(`http://127.0.0.1:${port}`);
  },
} as const;

after(() => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
});

for (const make of BACKINGS) {
  for (const [transport, reach] of Object.entries(TRANSPORTS)) {
    describe(`Hono middleware (${make.name}, ${transport})`, () => {
      let backing: Backing;
      before(async () => (backing = await make()));
      after(() => backing.close());

      /** A Hono app with the middleware, the shared routes and those `build` adds. */
      async function start(
        options: Partial<SessionOptions>,
        build: (app: Hono, sessions: ReturnType<typeof createSessions>) => void = () => {},
      ) {
        const sessions = createSessions({ ...backing.options, gc: false, ...options });
        const app = new Hono();
        // Quiet, and HTTPException keeps its status.
        app.onError((error, c) =>
          c.text('error', error instanceof HTTPException ? error.status : 500),
        );
        const withSession = honoSessions(sessions);
        app.get('/get', withSession, (c) =>
          c.json(c.get('session').get(c.req.query('name')!) ?? null),
        );
        app.get('/set', withSession, (c) => {
          c.get('session').set(c.req.query('name')!, JSON.parse(c.req.query('value')!));
          return c.text('ok');
        });
        app.get('/names', withSession, (c) => c.json(c.get('session').names()));
        build(app, sessions);
        const open = await reach(app);
        return { sessions, app, open, browser: open() as Client };
      }

      /** The engine's events while `body` runs. */
      async function eventsDuring(body: () => Promise<unknown>): Promise<SessionEvent[]> {
        const events: SessionEvent[] = [];
        const stop = backing.engine.subscribe((event) => events.push(event));
        try {
          await body();
        } finally {
          stop();
        }
        return events;
      }

      it('a first write creates the session and sets the cookie; the next request reads it back', async () => {
        const { browser, sessions } = await start({ className: 'ho-first' });
        const response = await browser.fetch('/set?name=cart&value=["apple"]');
        assert.equal(response.status, 200);
        assert.match(
          response.headers.getSetCookie()[0]!,
          /^sessiond=[A-Za-z0-9]{32}; Path=\/; HttpOnly; SameSite=Lax$/,
        );
        assert.deepEqual(await (await browser.fetch('/get?name=cart')).json(), ['apple']);
        assert.equal(await sessions.count(), 1);
      });

      it('a visitor who only reads costs no store write and gets no cookie', async () => {
        const { browser, sessions } = await start({ className: 'ho-lazy' });
        let response: Response | undefined;
        const events = await eventsDuring(async () => {
          response = await browser.fetch('/get?name=cart');
        });
        assert.equal(await response!.text(), 'null');
        assert.deepEqual(events, []);
        assert.deepEqual(response!.headers.getSetCookie(), []);
        assert.equal(await sessions.count(), 0);
      });

      it('a made-up id is never adopted: the visitor gets a fresh one, the made-up one is never created', async () => {
        const { browser } = await start({ className: 'ho-fixation' });
        const madeUp = 'AttackerChoseThisId0123456789xyz';
        browser.jar.set('sessiond', madeUp);
        await browser.fetch('/set?name=role&value="user"');
        assert.notEqual(browser.jar.get('sessiond'), madeUp);
        assert.match(browser.jar.get('sessiond')!, /^[A-Za-z0-9]{32}$/);
        assert.equal(await backing.engine.ctl(madeUp, 'EXIST'), 0);
      });

      it('only the variables that changed are written', async () => {
        const names: Array<readonly string[] | undefined> = [];
        const stop = backing.engine.hooks.pre(
          'update',
          (context) => void names.push(context.names),
        );
        try {
          const { browser } = await start({ className: 'ho-dirty' }, (app, sessions) => {
            app.get('/both', honoSessions(sessions), (c) => {
              c.get('session').set('a', 1);
              c.get('session').set('b', 1);
              return c.text('ok');
            });
            app.get('/touch-b', honoSessions(sessions), (c) => {
              const session = c.get('session');
              session.get('a');
              session.set('b', (session.get('b') as number) + 1);
              return c.text('ok');
            });
          });
          await browser.fetch('/both');
          names.length = 0;
          await browser.fetch('/touch-b');
          assert.deepEqual(names, [['b']]);
        } finally {
          stop();
        }
      });

      it('a tampered signature is refused: a fresh session, the real one untouched', async () => {
        const { browser } = await start({ className: 'ho-tamper', keys: [KEY] });
        await browser.fetch('/set?name=x&value=7');
        const [id, mac] = browser.jar.get('sessiond')!.split('.');
        assert.match(mac!, /^[\w-]{43}$/);
        browser.jar.set('sessiond', `${id}.${(mac!.startsWith('A') ? 'B' : 'A') + mac!.slice(1)}`);
        const tampered = await browser.fetch('/get?name=x');
        assert.equal(await tampered.text(), 'null');
        assert.match(tampered.headers.getSetCookie()[0]!, /Max-Age=0/, 'the bad cookie is cleared');
        browser.jar.set('sessiond', id!);
        assert.equal(await browser.text('/get?name=x'), 'null', 'an unsigned id is refused too');
        assert.equal(await backing.engine.ctl(id!, 'EXIST'), 1);
      });

      it('the header carrier reads X-Session-Id and answers a new id in it', async () => {
        const { browser } = await start({ className: 'ho-header', carrier: 'header' });
        const first = await browser.fetch('/set?name=x&value=5');
        const id = first.headers.get('x-session-id');
        assert.match(id!, /^[A-Za-z0-9]{32}$/);
        assert.deepEqual(first.headers.getSetCookie(), []);
        const again = await browser.fetch('/get?name=x', { headers: { 'x-session-id': id! } });
        assert.equal(await again.text(), '5');
        assert.equal(again.headers.get('x-session-id'), null, 'an unchanged id is not repeated');
      });

      it('the query carrier reads the id from the URL or a form, and url() and hiddenField() carry it', async () => {
        const { browser } = await start(
          { className: 'ho-query', carrier: 'query' },
          (app, sessions) => {
            app.get('/start', honoSessions(sessions), (c) => {
              const session = c.get('session');
              session.set('x', 1);
              return c.json({ next: session.url('/next'), field: session.hiddenField() });
            });
            app.post('/form', honoSessions(sessions), async (c) =>
              c.json({
                x: c.get('session').get('x') ?? null,
                // The middleware read the form; the handler still can.
                note: (await c.req.parseBody())['note'],
              }),
            );
          },
        );
        const first = await browser.fetch('/start');
        assert.deepEqual(first.headers.getSetCookie(), []);
        const { next, field } = (await first.json()) as { next: string; field: string };
        assert.match(next, /^\/next\?sessiond=[A-Za-z0-9]{32}$/);
        const token = next.split('=')[1]!;
        assert.equal(field, `<input type="hidden" name="sessiond" value="${token}">`);
        const byUrl = await browser.fetch(`/get?name=x&sessiond=${token}`);
        assert.equal(await byUrl.text(), '1');
        assert.equal(byUrl.headers.get('referrer-policy'), 'same-origin');
        const byForm = await browser.fetch('/form', {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: `note=hi&sessiond=${token}`,
        });
        assert.deepEqual(await byForm.json(), { x: 1, note: 'hi' });
      });

      it("fifty concurrent increments on a 'lock' route lose no update", async () => {
        const { browser } = await start({ className: 'ho-lock50' }, (app, sessions) => {
          app.get('/inc', honoSessions(sessions, { concurrency: 'lock' }), async (c) => {
            const session = c.get('session');
            const n = (session.get('n') as number | undefined) ?? 0;
            await new Promise((resolve) => setImmediate(resolve));
            session.set('n', n + 1);
            return c.json(n + 1);
          });
        });
        await browser.fetch('/set?name=n&value=0');
        const responses = await Promise.all(
          Array.from({ length: 50 }, () => browser.fetch('/inc')),
        );
        assert.deepEqual(
          responses.map((r) => r.status),
          Array(50).fill(200),
        );
        const seen = (await Promise.all(responses.map((r) => r.json()))) as number[];
        assert.deepEqual(
          seen.sort((a, b) => a - b),
          Array.from({ length: 50 }, (_, i) => i + 1),
        );
        assert.equal(await backing.engine.get(browser.jar.get('sessiond')!, 'n'), '50');
      });

      it("a 'lock' route answers 503 while another holder keeps the lock, and a throwing handler releases it", async () => {
        const { browser } = await start(
          { className: 'ho-busy', lock: { waitMs: 0 }, onError: () => {} },
          (app, sessions) => {
            const lock = honoSessions(sessions, { concurrency: 'lock' });
            app.get('/inc', lock, (c) => {
              const session = c.get('session');
              session.set('n', (session.get('n') as number) + 1);
              return c.json(session.get('n'));
            });
            app.get('/boom', lock, () => {
              throw new Error('boom');
            });
          },
        );
        await browser.fetch('/set?name=n&value=0');
        const id = browser.jar.get('sessiond')!;
        const held = await backing.engine.lock(id, { leaseMs: 60_000 });
        assert.ok(held.acquired);
        assert.equal((await browser.fetch('/inc')).status, 503);
        await backing.engine.unlock(id, held.key);
        const boom = await browser.fetch('/boom');
        assert.equal(boom.status, 500);
        assert.deepEqual(boom.headers.getSetCookie(), []);
        assert.equal(await browser.text('/inc'), '1');
      });

      it('a handler that throws saves nothing it changed', async () => {
        const { browser, sessions } = await start({ className: 'ho-throws' }, (app, sessions) => {
          app.get('/boom', honoSessions(sessions), (c) => {
            c.get('session').set('half', 'done');
            throw new Error('boom');
          });
        });
        const response = await browser.fetch('/boom');
        assert.equal(response.status, 500);
        assert.deepEqual(response.headers.getSetCookie(), []);
        assert.equal(await sessions.count(), 0);
      });

      it('a slower request cannot bring back a session destroyed by a logout', async () => {
        const loaded = deferred();
        const logoutDone = deferred();
        const { browser, sessions } = await start({ className: 'ho-race' }, (app, sessions) => {
          app.get('/slow', honoSessions(sessions), async (c) => {
            loaded.resolve();
            await logoutDone.promise;
            c.get('session').set('late', 'write');
            return c.text('late');
          });
          app.get('/logout', honoSessions(sessions), async (c) => {
            await c.get('session').delete();
            return c.text('bye');
          });
        });
        await browser.fetch('/set?name=x&value=1');
        const id = browser.jar.get('sessiond')!;
        const slow = browser.fetch('/slow');
        await loaded.promise;
        const logout = await browser.fetch('/logout');
        assert.match(logout.headers.getSetCookie()[0]!, /Max-Age=0/);
        logoutDone.resolve();
        const late = await slow;
        assert.equal(late.status, 200);
        assert.match(late.headers.getSetCookie()[0]!, /^sessiond=; .*Max-Age=0/);
        assert.equal(await backing.engine.ctl(id, 'EXIST'), 0);
        assert.equal(await sessions.count(), 0);
      });

      it('regenerate() at login moves the session to a new id, and the redirect waits for the save', async () => {
        const order: string[] = [];
        const { browser } = await start({ className: 'ho-login' }, (app, sessions) => {
          app.get('/login', honoSessions(sessions), async (c) => {
            await c.get('session').regenerate();
            c.get('session').userId = 'ada';
            return c.redirect('/home');
          });
          app.get('/whoami', honoSessions(sessions), (c) => c.text(c.get('session').userId ?? ''));
        });
        await browser.fetch('/set?name=cart&value=3');
        const before = browser.jar.get('sessiond')!;
        // A slow store: the response is built only after the save, however long it takes.
        const stopPre = backing.engine.hooks.pre('update', () => delay(50));
        const stopPost = backing.engine.hooks.post('update', () => void order.push('saved'));
        let login: Response;
        try {
          login = await browser.fetch('/login');
          order.push('response');
        } finally {
          stopPre();
          stopPost();
        }
        assert.deepEqual(order, ['saved', 'response']);
        assert.equal(login.status, 302);
        assert.equal(login.headers.get('location'), '/home');
        assert.equal(login.headers.getSetCookie().length, 1);
        assert.notEqual(browser.jar.get('sessiond'), before);
        assert.equal(await backing.engine.ctl(before, 'EXIST'), 0);
        assert.equal(await browser.text('/get?name=cart'), '3');
        assert.equal(await browser.text('/whoami'), 'ada');
      });

      it("cache headers follow the policy, the app's own Cache-Control wins, and a cookie is never cached publicly", async () => {
        const plain = await start({ className: 'ho-cache' }, (app, sessions) => {
          app.get('/own', honoSessions(sessions), (c) => {
            c.header('cache-control', 'max-age=5');
            return c.text('own');
          });
        });
        assert.equal(
          (await plain.browser.fetch('/get?name=x')).headers.get('cache-control'),
          'no-store',
        );
        assert.equal((await plain.browser.fetch('/own')).headers.get('cache-control'), 'max-age=5');
        const shared = await start({
          className: 'ho-cache-pub',
          cache: 'public',
          cacheMaxAge: 600,
        });
        const read = await shared.browser.fetch('/get?name=x');
        assert.equal(read.headers.get('cache-control'), 'public, max-age=600');
        assert.equal(read.headers.get('vary'), 'cookie');
        const write = await shared.browser.fetch('/set?name=x&value=1');
        assert.equal(write.headers.get('cache-control'), 'private, no-store');
      });

      it("a response from fetch() (immutable headers) still gets the session's cookie, and the app's too", async () => {
        const upstream = await listen((_req, res) => {
          res.setHeader('set-cookie', 'upstream=1; Path=/');
          res.end('from upstream');
        });
        try {
          const { browser } = await start({ className: 'ho-proxy' }, (app, sessions) => {
            app.get('/proxy', honoSessions(sessions), async (c) => {
              c.get('session').set('x', 1);
              return fetch(upstream.url);
            });
          });
          const response = await browser.fetch('/proxy');
          assert.equal(await response.text(), 'from upstream');
          const lines = response.headers.getSetCookie();
          assert.equal(lines.length, 2);
          assert.ok(lines.some((line) => /^sessiond=\w{32};/.test(line)));
          assert.equal(response.headers.get('cache-control'), 'no-store');
        } finally {
          await upstream.close();
        }
      });

      it('a second session middleware on the same request is refused', async () => {
        const { browser } = await start({ className: 'ho-twice' }, (app, sessions) => {
          app.use('/twice', honoSessions(sessions));
          app.get('/twice', honoSessions(sessions), (c) => c.text('never'));
        });
        assert.equal((await browser.fetch('/twice')).status, 500);
      });
    });
  }
}
