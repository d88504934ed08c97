import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { BACKINGS, Browser, type Backing } from '../src/web/test-support.ts';
import { createApp, DEMO_PASSWORD, DEMO_USER, fingerprint, type App } from './app.ts';

const KEY = 'an example key of at least 32 bytes';

/** Posts a urlencoded form, as a browser's form submission does. */
function post(browser: Browser, path: string, form: Record<string, string> = {}) {
  return browser.fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form).toString(),
  });
}

/** The text of the element with this id, from a page of the example. */
function byId(html: string, id: string): string | undefined {
  return new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(html)?.[1];
}

/** The session id inside a cookie token (`id` or `id.mac`). */
const idOf = (token: string) => token.split('.')[0]!;

for (const make of BACKINGS) {
  describe(`the example app (${make.name})`, () => {
    let backing: Backing;
    let example: App;
    let base: string;
    let close: () => void;
    before(async () => {
      backing = await make();
      example = createApp({ backing: backing.options, keys: [KEY] });
      const server = example.app.listen(0, '127.0.0.1');
      await once(server, 'listening');
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      close = () => {
        server.closeAllConnections();
        server.close();
      };
    });
    after(async () => {
      close();
      await example.close();
      await backing.close();
    });

    it('counts visits, logs in with a new id, and a second device is logged out from the first', async () => {
      const laptop = new Browser(base);
      assert.equal(byId(await laptop.text('/'), 'visits'), '1');
      assert.equal(byId(await laptop.text('/'), 'visits'), '2');
      const anonymous = laptop.jar.get('sessiond')!;

      const wrong = await post(laptop, '/login', { user: DEMO_USER, password: 'guess' });
      assert.equal(wrong.status, 401);
      assert.equal(laptop.jar.get('sessiond'), anonymous);

      const login = await post(laptop, '/login', { user: DEMO_USER, password: DEMO_PASSWORD });
      assert.equal(login.status, 303);
      assert.notEqual(laptop.jar.get('sessiond'), anonymous, 'login moved the session to a new id');
      const home = await laptop.text('/');
      assert.equal(byId(home, 'user'), DEMO_USER);
      assert.equal(byId(home, 'visits'), '3', 'the counter came along');

      const phone = new Browser(base);
      await post(phone, '/login', { user: DEMO_USER, password: DEMO_PASSWORD });
      assert.equal(byId(await phone.text('/'), 'user'), DEMO_USER);

      const devices = await laptop.text('/devices');
      assert.match(devices, /signed in on 2 devices/);
      assert.ok(devices.includes(fingerprint(idOf(phone.jar.get('sessiond')!))));
      assert.ok(
        devices.includes(`${fingerprint(idOf(laptop.jar.get('sessiond')!))}</code> (this device)`),
      );
      assert.ok(!devices.includes(idOf(phone.jar.get('sessiond')!)), 'no id is ever on a page');

      const revoke = await post(laptop, '/devices/revoke');
      assert.equal(revoke.status, 303);
      assert.match(await laptop.text('/devices'), /signed in on 1 device:/);

      const after = await phone.fetch('/');
      const html = await after.text();
      assert.equal(byId(html, 'user'), undefined, 'the phone is logged out');
      assert.match(html, /action="\/login"/);
      assert.equal(byId(html, 'visits'), '1', 'and starts a new session');
    });

    it('logout ends the session and clears the cookie', async () => {
      const browser = new Browser(base);
      await post(browser, '/login', { user: DEMO_USER, password: DEMO_PASSWORD });
      const id = idOf(browser.jar.get('sessiond')!);
      const logout = await post(browser, '/logout');
      assert.equal(logout.status, 303);
      assert.match(logout.headers.getSetCookie()[0]!, /^sessiond=; .*Max-Age=0/);
      assert.equal(await backing.engine.ctl(id, 'EXIST'), 0);
    });

    it('get mode carries the session in links and forms, and escapes what it shows', async () => {
      // A browser without cookies: the id must travel in the URL and the form.
      const first = await fetch(`${base}/get-mode/`);
      assert.deepEqual(first.headers.getSetCookie(), []);
      const html = await first.text();
      assert.equal(byId(html, 'clicks'), '1');
      const link = /id="again" href="([^"]+)"/.exec(html)![1]!;
      assert.match(link, /^\/get-mode\/\?sid=[A-Za-z0-9]{32}\.[\w-]{43}$/);
      const field = /<input type="hidden" name="sid" value="([^"]+)">/.exec(html)![1]!;
      assert.equal(`/get-mode/?sid=${field}`, link);
      const again = await fetch(base + link);
      assert.equal(byId(await again.text(), 'clicks'), '2');
      assert.equal(again.headers.get('referrer-policy'), 'same-origin');

      const saved = await fetch(`${base}/get-mode/note`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ sid: field, note: '<script>alert(1)</script>' }).toString(),
        redirect: 'manual',
      });
      assert.equal(saved.status, 303);
      assert.equal(saved.headers.get('location'), link);
      const shown = await (await fetch(base + link)).text();
      assert.equal(byId(shown, 'note'), '&lt;script&gt;alert(1)&lt;/script&gt;');
    });

    it('refuses a form posted from another site', async () => {
      const response = await fetch(`${base}/login`, {
        method: 'POST',
        headers: {
          origin: 'https://evil.example',
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ user: DEMO_USER, password: DEMO_PASSWORD }).toString(),
        redirect: 'manual',
      });
      assert.equal(response.status, 403);
      assert.deepEqual(response.headers.getSetCookie(), []);
    });
  });
}
