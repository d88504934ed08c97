import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import express from 'express';
import session from 'express-session';
import { SessiondStore } from './express-session-store.ts';
import { BACKINGS, Browser, type Backing } from './test-support.ts';

declare module 'express-session' {
  interface SessionData {
    views: number;
  }
}

const SECRET = 'an express-session secret of enough length';

for (const make of BACKINGS) {
  describe(`express-session with SessiondStore (${make.name})`, () => {
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

    /** An unchanged express-session app, its store swapped for sessiond. */
    async function start(store: SessiondStore, cookie: session.CookieOptions = {}) {
      const app = express();
      app.use(session({ store, secret: SECRET, resave: false, saveUninitialized: false, cookie }));
      app.get('/view', (req, res) => {
        req.session.views = (req.session.views ?? 0) + 1;
        res.json(req.session.views);
      });
      app.get('/peek', (req, res) => res.json(req.session.views ?? null));
      app.get('/logout', (req, res, next) =>
        req.session.destroy((e) => (e ? next(e) : res.send('bye'))),
      );
      app.get('/rotate', (req, res, next) => {
        const views = req.session.views;
        req.session.regenerate((e) => {
          if (e) return next(e);
          req.session.views = views ?? 0;
          res.send('rotated');
        });
      });
      const server = app.listen(0, '127.0.0.1');
      servers.push(server);
      await once(server, 'listening');
      return new Browser(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    }

    const storeOf = (className: string, ttl?: number) =>
      new SessiondStore({ ...backing.options, className, ...(ttl !== undefined && { ttl }) });

    // Bodies are read to the end each time: express-session writes all but the last byte of a
    // response before its save completes (its `writetop`), so headers alone prove nothing.
    it('an express-session app keeps its code and its sessions live in sessiond', async () => {
      const store = storeOf('es-views');
      const browser = await start(store);
      assert.equal(await browser.text('/view'), '1');
      assert.equal(await browser.text('/view'), '2');
      assert.equal(await browser.text('/peek'), '2');
      const sid = decodeURIComponent(browser.jar.get('connect.sid')!).slice(2).split('.')[0]!;
      const stored = JSON.parse(await backing.engine.getData(sid)) as { views: number };
      assert.equal(stored.views, 2);
      assert.equal(await promisify(store.length.bind(store))(), 1);
    });

    it('destroy and regenerate go through the store', async () => {
      const store = storeOf('es-destroy');
      const browser = await start(store);
      await browser.text('/view');
      const first = browser.jar.get('connect.sid');
      assert.equal(await browser.text('/rotate'), 'rotated');
      assert.notEqual(browser.jar.get('connect.sid'), first);
      assert.equal(await promisify(store.length.bind(store))(), 1);
      assert.equal(await browser.text('/peek'), '1');
      await browser.text('/logout');
      assert.equal(await promisify(store.length.bind(store))(), 0);
    });

    it("all, length, ids and clear see this store's class only", async () => {
      const mine = storeOf('es-mine');
      const theirs = storeOf('es-theirs');
      const set = (store: SessiondStore, sid: string, views: number) =>
        promisify<string, session.SessionData, void>(store.set.bind(store))(sid, {
          cookie: { originalMaxAge: null },
          views,
        });
      await set(mine, 'mine-1-aaaaaaaaaaaaaaaaaaaaaa', 1);
      await set(mine, 'mine-2-aaaaaaaaaaaaaaaaaaaaaa', 2);
      await set(theirs, 'theirs-aaaaaaaaaaaaaaaaaaaaaa', 3);
      const all = (await promisify(mine.all.bind(mine))()) as Record<string, session.SessionData>;
      assert.deepEqual(Object.keys(all).sort(), [
        'mine-1-aaaaaaaaaaaaaaaaaaaaaa',
        'mine-2-aaaaaaaaaaaaaaaaaaaaaa',
      ]);
      assert.equal(all['mine-2-aaaaaaaaaaaaaaaaaaaaaa']!.views, 2);
      const ids = (await promisify(mine.ids.bind(mine))()) ?? [];
      assert.deepEqual(ids.sort(), Object.keys(all).sort());
      assert.equal(await promisify(mine.length.bind(mine))(), 2);
      if (backing.name === 'embedded') {
        const get = promisify(mine.get.bind(mine));
        assert.equal(await get('theirs-aaaaaaaaaaaaaaaaaaaaaa'), null, 'another class is not ours');
      }
      await promisify(mine.clear.bind(mine))();
      assert.equal(await promisify(mine.length.bind(mine))(), 0);
      assert.equal(await promisify(theirs.length.bind(theirs))(), 1);
    });

    it('clear() pages past maxResultIds, where one LIST answers LIMIT', async () => {
      const small = await make({ limits: { maxResultIds: 100 } });
      after(() => small.close());
      const store = new SessiondStore({ ...small.options, className: 'es-many' });
      const set = promisify<string, session.SessionData, void>(store.set.bind(store));
      // Past maxResultIds, and more than two LIST pages (100 ids each by default).
      for (let i = 0; i < 250; i++) {
        await set(`many-${String(i).padStart(3, '0')}-aaaaaaaaaaaaaaaaaaaa`, {
          cookie: { originalMaxAge: null },
          views: i,
        });
      }
      assert.equal(await promisify(store.length.bind(store))(), 250);
      await assert.rejects(promisify(store.ids.bind(store))(), { code: 'LIMIT' });
      await promisify(store.clear.bind(store))();
      assert.equal(await promisify(store.length.bind(store))(), 0);
    });

    it("the cookie's maxAge becomes the idle timeout; touch extends it", async () => {
      const store = storeOf('es-ttl');
      const browser = await start(store, { maxAge: 60_000 });
      await browser.text('/view');
      const sid = decodeURIComponent(browser.jar.get('connect.sid')!).slice(2).split('.')[0]!;
      assert.equal(await backing.engine.timeout(sid), 60);
      backing.clock.advance(50_000);
      await promisify(store.touch.bind(store))(sid, {} as session.SessionData);
      backing.clock.advance(50_000);
      assert.equal(await browser.text('/peek'), '1');
      backing.clock.advance(61_000);
      assert.equal(await browser.text('/peek'), 'null');
    });

    it('a session without maxAge gets the store ttl; get of an unknown id is null', async () => {
      const store = storeOf('es-default', 120);
      const browser = await start(store);
      await browser.text('/view');
      const sid = decodeURIComponent(browser.jar.get('connect.sid')!).slice(2).split('.')[0]!;
      assert.equal(await backing.engine.timeout(sid), 120);
      assert.equal(await promisify(store.get.bind(store))('no-such-session-aaaaaaaaaaaa'), null);
    });

    it('a blob that is JavaScript, not JSON, reads as no session and never runs', async () => {
      const store = storeOf('es-code');
      const ran = '__sessiondStoreTestRan';
      const blobs = [
        `globalThis.${ran} = true; ({ cookie: {}, views: 1 })`,
        `(function () { globalThis.${ran} = true; return { cookie: {} }; })()`,
        `{ cookie: {}, views: (globalThis.${ran} = true) }`,
      ];
      for (const [i, blob] of blobs.entries()) {
        const sid = `es-code-session-${i}-aaaaaaaaaaaaaaaa`;
        // Written as another client would: the blob is the text itself.
        assert.equal(await backing.engine.create(sid, { cls: 'es-code', data: blob }), true);
        assert.equal(await promisify(store.get.bind(store))(sid), null, blob);
        assert.equal(await backing.engine.getData(sid), blob, 'the blob is left as it was');
      }
      assert.equal(ran in globalThis, false);
    });
  });
}
