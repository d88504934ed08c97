import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CachePolicy, SessionOptions } from '../options.ts';
import { BACKINGS, rawRequest, useBacking, type Route } from '../test-support.ts';

const KEY_A = 'a'.repeat(32);
const KEY_B = 'b'.repeat(32);

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
  describe(`ids, cookies and cache headers on the wire (${make.name})`, () => {
    const context = useBacking(make);
    const app = (options: Partial<SessionOptions> = {}, routes = ROUTES) =>
      context.app(options, routes);

    describe('signed ids', () => {
      it('issues id.mac and reads it back', async () => {
        const { browser } = await app({ className: 'signed', keys: [KEY_A] });
        await browser.fetch('/set?name=x&value=7');
        assert.match(browser.jar.get('sessiond')!, /^[A-Za-z0-9]{32}\.[\w-]{43}$/);
        assert.equal(await browser.text('/get?name=x'), '7');
      });

      it('a tampered signature is rejected: a fresh session, the real one untouched', async () => {
        const { browser } = await app({ className: 'tamper', keys: [KEY_A] });
        await browser.fetch('/set?name=x&value=7');
        const token = browser.jar.get('sessiond')!;
        const [id, mac] = token.split('.');
        const flipped = (mac!.startsWith('A') ? 'B' : 'A') + mac!.slice(1);
        browser.jar.set('sessiond', `${id}.${flipped}`);
        assert.equal(await browser.text('/get?name=x'), 'null');
        browser.jar.set('sessiond', id!);
        assert.equal(await browser.text('/get?name=x'), 'null', 'an unsigned id is refused too');
        assert.equal(await context.backing.engine.ctl(id!, 'EXIST'), 1);
      });

      it('a tampered or unknown id is reported to onRejectedId, without the id', async () => {
        const calls: unknown[][] = [];
        const onRejectedId = (...args: unknown[]) => void calls.push(args);
        const { browser, sessions } = await app({
          className: 'reject',
          keys: [KEY_A],
          onRejectedId,
        });
        await browser.fetch('/set?name=x&value=7');
        const [id, mac] = browser.jar.get('sessiond')!.split('.');
        assert.equal(await browser.text('/get?name=x'), '7');
        assert.deepEqual(calls, [], 'a good id and a new visitor are not reported');
        /** The arguments onRejectedId was called with during one request carrying `cookie`. */
        const reported = async (cookie: string) => {
          const from = calls.length;
          browser.jar.set('sessiond', cookie);
          await browser.fetch('/get?name=x');
          return calls.slice(from);
        };
        const flipped = (mac!.startsWith('A') ? 'B' : 'A') + mac!.slice(1);
        assert.deepEqual(await reported(`${id}.${flipped}`), [['bad-signature']]);
        assert.deepEqual(await reported(id!), [['bad-signature']], 'unsigned');
        const madeUp = sessions.options.signer.sign('M'.repeat(32));
        assert.deepEqual(await reported(madeUp), [['unknown']], 'signed but never issued');
        const plain = await app({ className: 'reject', carrier: 'header', onRejectedId });
        const from = calls.length;
        const response = await fetch(`${plain.server.url}/get?name=x`, {
          headers: { 'x-session-id': 'has,comma' },
        });
        assert.equal(response.status, 200);
        assert.deepEqual(calls.slice(from), [['malformed']]);
        // Only the reason: no argument is, or holds, the id.
        assert.ok(!JSON.stringify(calls).includes(id!.slice(0, 8)));
      });

      it('a key rotation keeps sessions signed by the older key and signs anew with the first', async () => {
        const old = await app({ className: 'rotate', keys: [KEY_A] });
        await old.browser.fetch('/set?name=x&value=1');
        const rotated = await app({ className: 'rotate', keys: [KEY_B, KEY_A] });
        const browser = rotated.server.browser();
        browser.jar.set('sessiond', old.browser.jar.get('sessiond')!);
        assert.equal(await browser.text('/get?name=x'), '1');
        const fresh = rotated.server.browser();
        await fresh.fetch('/set?name=x&value=2');
        const onlyOld = await app({ className: 'rotate', keys: [KEY_A] });
        const stranger = onlyOld.server.browser();
        stranger.jar.set('sessiond', fresh.jar.get('sessiond')!);
        assert.equal(await stranger.text('/get?name=x'), 'null');
      });
    });

    describe('carriers', () => {
      it('cookie mode never reads an id from the URL or a header', async () => {
        // Defends against ids leaking through Referer and logs, and fixation by a crafted link.
        const { server } = await app({ className: 'cookie-only' });
        const first = await fetch(`${server.url}/set?name=x&value=5`);
        const [cookie] = first.headers.getSetCookie();
        const id = /^sessiond=([^;]+)/.exec(cookie!)![1]!;
        const viaUrl = await fetch(`${server.url}/get?name=x&sessiond=${encodeURIComponent(id)}`, {
          headers: { 'x-session-id': id },
        });
        assert.equal(await viaUrl.text(), 'null', 'the session is not reached without its cookie');
        for (const set of viaUrl.headers.getSetCookie()) {
          assert.ok(!set.includes(id), 'never a cookie for the id in the URL');
        }
        const viaCookie = await fetch(`${server.url}/get?name=x`, {
          headers: { cookie: `sessiond=${id}` },
        });
        assert.equal(await viaCookie.text(), '5');
      });

      it('the header carrier reads X-Session-Id and answers a new id in it', async () => {
        const { server } = await app({ className: 'header', carrier: 'header' });
        const first = await fetch(`${server.url}/set?name=x&value=5`);
        const id = first.headers.get('x-session-id');
        assert.match(id!, /^[A-Za-z0-9]{32}$/);
        assert.deepEqual(first.headers.getSetCookie(), []);
        const again = await fetch(`${server.url}/get?name=x`, { headers: { 'x-session-id': id! } });
        assert.equal(await again.text(), '5');
        assert.equal(again.headers.get('x-session-id'), null, 'an unchanged id is not repeated');
      });

      it('the query carrier reads the id from the URL, and url() and hiddenField() carry it', async () => {
        const links: Route = (session) => ({
          url: session.url('/next?a=1&'),
          self: session.selfUrl(),
          more: session.addQuery({ page: 2, q: 'a b&c' }),
          field: session.hiddenField(),
          alias: session.hiddenId(),
        });
        const strict = await app(
          { className: 'query0', carrier: 'query' },
          { ...ROUTES, '/links': links },
        );
        const first = await fetch(`${strict.server.url}/set?name=x&value=5`);
        assert.deepEqual(first.headers.getSetCookie(), []);
        const token = first.headers.get('x-session-id');
        assert.equal(token, null, 'the query carrier sends no id header');
        const unknown = await fetch(
          `${strict.server.url}/links?sessiond=made-up-id-0123456789abcdef`,
        );
        assert.deepEqual(await unknown.json(), {
          url: '/next?a=1',
          self: '/links',
          more: '?page=2&q=a%20b%26c',
          field: '',
          alias: '',
        });
        const { server } = await app(
          { className: 'query', carrier: 'query', strict: false },
          {
            ...ROUTES,
            '/links': links,
          },
        );
        // A session made by a strict-off app under an id with characters that need escaping.
        const odd = `id<script>&'${'x'.repeat(24)}`;
        await fetch(`${server.url}/set?name=x&value=5&sessiond=${encodeURIComponent(odd)}`);
        const page = await fetch(`${server.url}/links?b=2&sessiond=${encodeURIComponent(odd)}`);
        const body = (await page.json()) as Record<string, string>;
        const encoded = encodeURIComponent(odd).replace(/'/g, '%27');
        assert.equal(body['url'], `/next?a=1&sessiond=${encoded}`);
        assert.equal(body['self'], `/links?b=2&sessiond=${encoded}`);
        assert.equal(body['more'], '&page=2&q=a%20b%26c');
        assert.equal(
          body['field'],
          '<input type="hidden" name="sessiond" value="id&lt;script&gt;&amp;&#39;xxxxxxxxxxxxxxxxxxxxxxxx">',
        );
        assert.equal(body['alias'], body['field']);
        assert.equal(page.headers.get('referrer-policy'), 'same-origin');
      });

      it('cookie mode falls back to URLs when the browser sends no cookie back', async () => {
        const { server, browser } = await app(
          { className: 'fallback', carrier: 'cookie-or-query' },
          {
            ...ROUTES,
            '/start': (session) => {
              session.set('x', 1);
              return session.url('/next');
            },
            '/link': (session) => session.url('/next'),
          },
        );
        // A browser that refuses cookies: the id must ride in the URL.
        const start = await fetch(`${server.url}/start`);
        const next = (await start.json()) as string;
        assert.match(next, /^\/next\?sessiond=[A-Za-z0-9]{32}$/);
        const token = next.split('=')[1]!;
        const followed = await fetch(`${server.url}/link?sessiond=${token}`);
        assert.equal(await followed.json(), `/next?sessiond=${token}`);
        assert.equal(followed.headers.getSetCookie().length, 1, 'the cookie is offered again');
        // A browser that keeps cookies: URLs stay clean.
        await browser.fetch('/start');
        assert.equal(JSON.parse(await browser.text('/link')), '/next');
      });
    });

    describe('cookie attributes', () => {
      it('Secure only over HTTPS: a trusted proxy may say so, an untrusted peer may not', async () => {
        const untrusted = await app({ className: 'secure1' });
        const lie = await rawRequest(untrusted.server.port, '/set?name=x&value=1', {
          'x-forwarded-proto': 'https',
        });
        assert.doesNotMatch(String(lie.headers['set-cookie']), /Secure/);
        const trusted = await app({ className: 'secure2', trustProxy: ['127.0.0.1'] });
        const proxied = await rawRequest(trusted.server.port, '/set?name=x&value=1', {
          'x-forwarded-proto': 'https, http',
        });
        assert.match(String(proxied.headers['set-cookie']), /; Secure/);
      });

      it('path, domain, lifetime and the __Host- prefix are as configured', async () => {
        const scoped = await app({
          className: 'attrs',
          cookie: { path: '/shop', domain: 'example.com', maxAge: 3600, sameSite: 'strict' },
        });
        const response = await scoped.browser.fetch('/set?name=x&value=1');
        assert.equal(
          response.headers.getSetCookie()[0]!.replace(/=\w+;/, '=ID;'),
          'sessiond=ID; Path=/shop; Domain=example.com; Max-Age=3600; HttpOnly; SameSite=Strict',
        );
        const again = await scoped.browser.fetch('/get?name=x');
        assert.equal(again.headers.getSetCookie().length, 1, 'a lifetime cookie slides');
        const host = await app({ className: 'hostp', cookie: { hostPrefix: true } });
        const prefixed = await host.browser.fetch('/set?name=x&value=1');
        assert.match(
          prefixed.headers.getSetCookie()[0]!,
          /^__Host-sessiond=\w+; Path=\/; HttpOnly; Secure; SameSite=Lax$/,
        );
        assert.equal(await host.browser.text('/get?name=x'), '1');
      });
    });

    describe('cache headers', () => {
      const cases: Array<[CachePolicy, string | null]> = [
        ['no', 'no-store'],
        ['private', 'private, max-age=600'],
        ['public', 'public, max-age=600'],
        ['passive', null],
      ];
      for (const [policy, expected] of cases) {
        it(`policy ${policy} sends ${expected ?? 'no Cache-Control'}`, async () => {
          const { browser } = await app({
            className: `cache-${policy}`,
            cache: policy,
            cacheMaxAge: 600,
          });
          const response = await browser.fetch('/get?name=x');
          assert.equal(response.headers.get('cache-control'), expected);
          if (policy === 'private' || policy === 'public') {
            assert.equal(response.headers.get('vary'), 'cookie');
          }
        });
      }

      it("the application's own Cache-Control wins", async () => {
        const { browser } = await app(
          { className: 'cache-own' },
          {
            '/own': (_session, _q, res) => {
              res.setHeader('cache-control', 'max-age=5');
              return 'own';
            },
          },
        );
        assert.equal((await browser.fetch('/own')).headers.get('cache-control'), 'max-age=5');
      });

      it('a response that sets the cookie is never stored by shared caches', async () => {
        const { browser } = await app({ className: 'cache-pub', cache: 'public' });
        const response = await browser.fetch('/set?name=x&value=1');
        assert.equal(response.headers.get('cache-control'), 'private, no-store');
      });
    });

    it('malformed and oversized cookies never crash: the visitor gets a fresh session', async () => {
      const { server } = await app({ className: 'junk', keys: [KEY_A] });
      const headers = [
        'sessiond',
        'sessiond=; ; ;;=;=x',
        `sessiond="${'"'.repeat(50)}`,
        `sessiond=${'A'.repeat(8000)}`,
        `a=%E0%A4%A; sessiond=%ZZ%; b="unterminated`,
        'sessiond=\u00ff\u00fe; sessiond=..; sessiond=.x',
        `${'x=1; '.repeat(1500)}sessiond=y`,
      ];
      for (const cookie of headers) {
        const response = await rawRequest(server.port, '/set?name=x&value=1', { cookie });
        assert.equal(response.status, 200, cookie.slice(0, 40));
        assert.match(String(response.headers['set-cookie']), /^sessiond=[\w.-]+; Path=\//);
      }
    });
  });
}
