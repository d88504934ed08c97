import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express, { type ErrorRequestHandler, type Express } from 'express';
import { createSessions } from '../manager.ts';
import type { SessionOptions } from '../options.ts';
import { BACKINGS, Browser, type Backing } from '../test-support.ts';
import { expressSessions, sessionOf } from './index.ts';

for (const make of BACKINGS) {
  describe(`Express middleware (${make.name})`, () => {
    let backing: Backing;
    const servers: Server[] = [];
    before(async () => (backing = await make()));
    after(async () => {
      for (const server of servers) {
        server.closeAllConnections();
        server.close();
      }
      await backing.close();
    });

    /** An Express app on port 0 with the routes `build` adds after the session middleware. */
    async function start(options: Partial<SessionOptions>, build: (app: Express) => void) {
      const sessions = createSessions({ ...backing.options, gc: false, ...options });
      const app = express();
      app.use(expressSessions(sessions));
      build(app);
      const onError: ErrorRequestHandler = (error: { status?: number }, _req, res, _next) => {
        res.status(error.status ?? 500).send('error');
      };
      app.use(onError);
      const server = app.listen(0, '127.0.0.1');
      servers.push(server);
      await once(server, 'listening');
      const { port } = server.address() as AddressInfo;
      return { sessions, browser: () => new Browser(`http://127.0.0.1:${port}`) };
    }

    it('sets req.session, and res.json and res.redirect wait for the save', async () => {
      const { browser: open } = await start({ className: 'express1' }, (app) => {
        app.get('/login', (req, res) => {
          sessionOf(req).set('user', 'ada');
          res.redirect('/home');
        });
        app.get('/home', (req, res) => {
          const same = (req as unknown as { session: unknown }).session === sessionOf(req);
          res.json({ user: sessionOf(req).get('user'), same });
        });
      });
      const browser = open();
      const login = await browser.fetch('/login');
      assert.equal(login.status, 302);
      assert.equal(login.headers.get('location'), '/home');
      assert.match(
        login.headers.getSetCookie()[0]!,
        /^sessiond=\w{32}; Path=\/; HttpOnly; SameSite=Lax$/,
      );
      assert.deepEqual(await (await browser.fetch('/home')).json(), { user: 'ada', same: true });
    });

    it('a made-up id gets a fresh one through Express too', async () => {
      const { browser: open } = await start({ className: 'express-fix' }, (app) => {
        app.get('/set', (req, res) => {
          sessionOf(req).set('x', 1);
          res.send('ok');
        });
      });
      const browser = open();
      browser.jar.set('sessiond', 'MadeUpByAnAttacker0123456789abcd');
      await browser.fetch('/set');
      assert.notEqual(browser.jar.get('sessiond'), 'MadeUpByAnAttacker0123456789abcd');
      assert.equal(await backing.engine.ctl('MadeUpByAnAttacker0123456789abcd', 'EXIST'), 0);
    });

    it('a route can ask for the lock; a busy session reaches the error handler as 503', async () => {
      const { sessions, browser: open } = await start(
        { className: 'express-lock', lock: { waitMs: 0 }, onError: () => {} },
        (app) => {
          app.get('/start', (req, res) => {
            sessionOf(req).set('n', 0);
            res.send('ok');
          });
        },
      );
      const app = express();
      app.get('/inc', expressSessions(sessions, { concurrency: 'lock' }), (req, res) => {
        const session = sessionOf(req);
        session.set('n', (session.get('n') as number) + 1);
        res.json(session.get('n'));
      });
      app.use(((error: { status?: number }, _req, res, _next) => {
        res.status(error.status ?? 500).send('error');
      }) as ErrorRequestHandler);
      const server = app.listen(0, '127.0.0.1');
      servers.push(server);
      await once(server, 'listening');
      const locked = new Browser(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const browser = open();
      await browser.fetch('/start');
      locked.jar.set('sessiond', browser.jar.get('sessiond')!);
      const id = browser.jar.get('sessiond')!;
      const responses = await Promise.all(Array.from({ length: 10 }, () => locked.fetch('/inc')));
      const succeeded = responses.filter((r) => r.status === 200).length;
      assert.ok(succeeded > 0);
      assert.ok(responses.every((r) => r.status === 200 || r.status === 503));
      assert.equal(
        await backing.engine.get(id, 'n'),
        String(succeeded),
        'no success lost its update',
      );
      const held = await backing.engine.lock(id, { leaseMs: 60_000 });
      assert.ok(held.acquired);
      assert.equal((await locked.fetch('/inc')).status, 503);
      await backing.engine.unlock(id, held.key);
    });

    it('reads the id from the full URL when mounted under a path (selfUrl keeps the mount)', async () => {
      const { browser: open } = await start({ className: 'express-mount' }, (app) => {
        const router = express.Router();
        router.get('/page', (req, res) => res.json(sessionOf(req).selfUrl()));
        app.use('/shop', router);
      });
      assert.equal(await open().text('/shop/page?x=1'), '"/shop/page?x=1"');
    });
  });
}
