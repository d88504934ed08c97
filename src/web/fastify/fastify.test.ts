import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyInstance } from 'fastify';
import type { SessionEvent } from '../../core/events.ts';
import { createSessions } from '../manager.ts';
import type { SessionOptions } from '../options.ts';
import { BACKINGS, Browser, CookieJar, deferred, type Backing } from '../test-support.ts';
import { fastifySessions } from './index.ts';

const KEY = 'k'.repeat(32);

/** What a test asks of a request: a subset of fetch's RequestInit, served by both transports. */
interface Init {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** A browser of one app: through real sockets or through inject(). */
interface Client {
  readonly jar: CookieJar;
  fetch(path: string, init?: Init): Promise<Response>;
  text(path: string, init?: Init): Promise<string>;
}

/** A browser that reaches the app through app.inject(): no socket, the same lifecycle. */
class InjectBrowser implements Client {
  readonly jar = new CookieJar();
  #app: FastifyInstance;

  constructor(app: FastifyInstance) {
    this.#app = app;
  }

  async fetch(path: string, init: Init = {}): Promise<Response> {
    const cookie = this.jar.header();
    const reply = await this.#app.inject({
      method: (init.method ?? 'GET') as 'GET',
      url: path,
      headers: { ...(cookie !== undefined && { cookie }), ...init.headers },
      ...(init.body !== undefined && { payload: init.body }),
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(reply.headers)) {
      for (const line of [value ?? []].flat()) headers.append(name, String(line));
    }
    const response = new Response(reply.statusCode === 204 ? null : reply.rawPayload, {
      status: reply.statusCode,
      headers,
    });
    this.jar.store(headers.getSetCookie());
    return response;
  }

  async text(path: string, init: Init = {}): Promise<string> {
    return (await this.fetch(path, init)).text();
  }
}

/** How the tests reach an app. */
const TRANSPORTS = {
  'inject()': async (app: FastifyInstance) => {
    await app.ready();
    return () => new InjectBrowser(app);
  },
  'port 0': async (app: FastifyInstance) => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return () => new Browser(`http://127.0.0.1:${port}`);
  },
} as const;

type Query = Record<string, string>;

/** The routes most tests share: read, write, and list what is stored. */
function commonRoutes(app: FastifyInstance): void {
  app.get(
    '/get',
    async (request) => request.session.get((request.query as Query)['name']!) ?? null,
  );
  app.get('/set', async (request) => {
    const { name, value } = request.query as Query;
    request.session.set(name!, JSON.parse(value!));
    return 'ok';
  });
  app.get('/names', async (request) => request.session.names());
}

for (const make of BACKINGS) {
  for (const [transport, reach] of Object.entries(TRANSPORTS)) {
    describe(`Fastify plugin (${make.name}, ${transport})`, () => {
      let backing: Backing;
      const apps: FastifyInstance[] = [];
      before(async () => (backing = await make()));
      after(async () => {
        for (const app of apps) await app.close();
        await backing.close();
      });

      /** A Fastify app with the plugin, the shared routes and those `build` adds. */
      async function start(
        options: Partial<SessionOptions>,
        build: (app: FastifyInstance) => void = () => {},
      ) {
        const sessions = createSessions({ ...backing.options, gc: false, ...options });
        const app = Fastify();
        apps.push(app);
        await app.register(fastifySessions, { sessions });
        commonRoutes(app);
        build(app);
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
        const { browser, sessions } = await start({ className: 'fy-first' });
        const response = await browser.fetch('/set?name=cart&value=["apple"]');
        assert.equal(response.status, 200);
        assert.match(
          response.headers.getSetCookie()[0]!,
          /^sessiond=[A-Za-z0-9]{32}; Path=\/; HttpOnly; SameSite=Lax$/,
        );
        assert.deepEqual(await (await browser.fetch('/get?name=cart')).json(), ['apple']);
        assert.equal(await sessions.count(), 1);
      });

      it("Fastify's 404 goes through the plugin too: a stale cookie is cleared there as well", async () => {
        const { browser } = await start({ className: 'fy-404' });
        browser.jar.set('sessiond', 'NoSuchSession0123456789abcdefghi');
        const response = await browser.fetch('/nowhere');
        assert.equal(response.status, 404);
        assert.match(response.headers.getSetCookie()[0]!, /^sessiond=; Path=\/; Max-Age=0;/);
        assert.equal(response.headers.get('cache-control'), 'no-store');
      });

      it('a visitor who only reads costs no store write and gets no cookie', async () => {
        const { browser, sessions } = await start({ className: 'fy-lazy' });
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
        const { browser } = await start({ className: 'fy-fixation' });
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
          const { browser } = await start({ className: 'fy-dirty' }, (app) => {
            app.get('/both', async (request) => {
              request.session.set('a', 1);
              request.session.set('b', 1);
              return 'ok';
            });
            app.get('/touch-b', async (request) => {
              request.session.get('a');
              request.session.set('b', (request.session.get('b') as number) + 1);
              return 'ok';
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
        const { browser } = await start({ className: 'fy-tamper', keys: [KEY] });
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
        const { browser } = await start({ className: 'fy-header', carrier: 'header' });
        const first = await browser.fetch('/set?name=x&value=5');
        const id = first.headers.get('x-session-id');
        assert.match(id!, /^[A-Za-z0-9]{32}$/);
        assert.deepEqual(first.headers.getSetCookie(), []);
        const again = await browser.fetch('/get?name=x', { headers: { 'x-session-id': id! } });
        assert.equal(await again.text(), '5');
        assert.equal(again.headers.get('x-session-id'), null, 'an unchanged id is not repeated');
      });

      it('the query carrier reads the id from the URL or a form, and url() and hiddenField() carry it', async () => {
        const { browser } = await start({ className: 'fy-query', carrier: 'query' }, (app) => {
          app.addContentTypeParser(
            'application/x-www-form-urlencoded',
            { parseAs: 'string' },
            (_request, body, done) =>
              done(null, Object.fromEntries(new URLSearchParams(String(body)))),
          );
          app.get('/start', async (request) => {
            request.session.set('x', 1);
            return { next: request.session.url('/next'), field: request.session.hiddenField() };
          });
          app.post('/form', async (request) => request.session.get('x') ?? null);
        });
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
          body: `sessiond=${token}`,
        });
        assert.equal(await byForm.text(), '1');
      });

      it("fifty concurrent increments on a 'lock' route lose no update", async () => {
        const { browser } = await start({ className: 'fy-lock50' }, (app) => {
          app.get('/inc', { config: { session: { concurrency: 'lock' } } }, async (request) => {
            const n = (request.session.get('n') as number | undefined) ?? 0;
            await new Promise((resolve) => setImmediate(resolve));
            request.session.set('n', n + 1);
            return n + 1;
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
          { className: 'fy-busy', lock: { waitMs: 0 }, onError: () => {} },
          (app) => {
            const lock = { config: { session: { concurrency: 'lock' as const } } };
            app.get('/inc', lock, async (request) => {
              request.session.set('n', (request.session.get('n') as number) + 1);
              return request.session.get('n');
            });
            app.get('/boom', lock, async (request) => {
              request.session.set('n', 99);
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
        assert.equal(await browser.text('/inc'), '1', 'unlocked, and the 99 was never saved');
      });

      it('a slower request cannot bring back a session destroyed by a logout', async () => {
        const loaded = deferred();
        const logoutDone = deferred();
        const { browser, sessions } = await start({ className: 'fy-race' }, (app) => {
          app.get('/slow', async (request) => {
            loaded.resolve();
            await logoutDone.promise;
            request.session.set('late', 'write');
            return 'late';
          });
          app.get('/logout', async (request) => {
            await request.session.delete();
            return 'bye';
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
        const { browser } = await start({ className: 'fy-login' }, (app) => {
          app.get('/login', async (request, reply) => {
            await request.session.regenerate();
            request.session.userId = 'ada';
            return reply.redirect('/home');
          });
          app.get('/whoami', async (request) => request.session.userId);
        });
        await browser.fetch('/set?name=cart&value=3');
        const before = browser.jar.get('sessiond')!;
        // A slow store: without onSend's wait, the redirect would arrive first.
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
        const plain = await start({ className: 'fy-cache' }, (app) => {
          app.get('/own', async (_request, reply) => {
            reply.header('cache-control', 'max-age=5');
            return 'own';
          });
        });
        assert.equal(
          (await plain.browser.fetch('/get?name=x')).headers.get('cache-control'),
          'no-store',
        );
        assert.equal((await plain.browser.fetch('/own')).headers.get('cache-control'), 'max-age=5');
        const shared = await start({
          className: 'fy-cache-pub',
          cache: 'public',
          cacheMaxAge: 600,
        });
        const read = await shared.browser.fetch('/get?name=x');
        assert.equal(read.headers.get('cache-control'), 'public, max-age=600');
        assert.equal(read.headers.get('vary'), 'cookie');
        const write = await shared.browser.fetch('/set?name=x&value=1');
        assert.equal(write.headers.get('cache-control'), 'private, no-store');
      });

      it("the app's own cookies (@fastify/cookie) and the session's both arrive", async () => {
        const sessions = createSessions({ ...backing.options, gc: false, className: 'fy-both' });
        const app = Fastify();
        apps.push(app);
        await app.register(fastifyCookie);
        await app.register(fastifySessions, { sessions });
        app.get('/both', async (request, reply) => {
          request.session.set('x', 1);
          reply.setCookie('theme', 'dark', { path: '/' });
          return 'ok';
        });
        const browser = (await reach(app))() as Client;
        const response = await browser.fetch('/both');
        const lines = response.headers.getSetCookie();
        assert.equal(lines.length, 2);
        assert.ok(lines.some((line) => line.startsWith('theme=dark')));
        assert.ok(lines.some((line) => /^sessiond=\w{32};/.test(line)));
      });

      it('a streamed body gets its headers after the first save; changes while it streams are saved at its end', async () => {
        const { browser } = await start({ className: 'fy-stream' }, (app) => {
          app.get('/stream', async (request, reply) => {
            request.session.set('a', 1);
            const { session } = request;
            const body = Readable.from(
              (async function* () {
                yield 'part one, ';
                session.set('b', 2);
                yield 'part two';
              })(),
            );
            return reply.type('text/plain').send(body);
          });
        });
        // The end is written once the response closes, which may be just after the client has it.
        const savedB = deferred();
        const stop = backing.engine.hooks.post('update', (context) => {
          if (context.names?.includes('b')) savedB.resolve();
        });
        try {
          const response = await browser.fetch('/stream');
          assert.equal(await response.text(), 'part one, part two');
          assert.equal(response.headers.getSetCookie().length, 1);
          await savedB.promise;
        } finally {
          stop();
        }
        assert.deepEqual(JSON.parse(await browser.text('/names')), ['a', 'b']);
      });
    });
  }
}
