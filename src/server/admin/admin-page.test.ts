import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import type { SessiondServer } from '../server.ts';
import { startTestServer } from '../test-support.ts';
import { ADMIN_CSP } from './admin-page.ts';

const PASSWORD = 'admin-page-secret';
const AUTH = { authorization: `Bearer ${PASSWORD}` };

const servers: SessiondServer[] = [];
after(() => Promise.all(servers.map((server) => server.close())));

async function start() {
  const clock = new ManualClock();
  const server = await startTestServer(
    { http: { port: 0 }, auth: { password: PASSWORD } },
    { clock },
  );
  servers.push(server);
  const base = `http://127.0.0.1:${server.httpAddress!.port}`;
  const post = (path: string, body: unknown, headers: Record<string, string> = AUTH) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  return { server, clock, base, post };
}

describe('the admin page over HTTP', () => {
  it('serves its files without credentials: they hold no data, and the page asks for them', async () => {
    const { base } = await start();
    for (const [path, type] of [
      ['/admin', 'text/html'],
      ['/admin/app.js', 'text/javascript'],
      ['/admin/charts.js', 'text/javascript'],
      ['/admin/admin.css', 'text/css'],
    ] as const) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(response.headers.get('content-type'), `${type}; charset=utf-8`);
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    }
  });

  it('forbids inline script and framing: a strict CSP and X-Frame-Options DENY', async () => {
    const { base } = await start();
    const response = await fetch(`${base}/admin`);
    const csp = response.headers.get('content-security-policy')!;
    assert.equal(csp, ADMIN_CSP);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(response.headers.get('x-frame-options'), 'DENY');
    const html = await response.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=/i);
  });

  it('answers its API only with the password, and never to another origin', async () => {
    const { base, post } = await start();
    assert.equal((await fetch(`${base}/admin/api/stats`)).status, 401);
    const wrong = await fetch(`${base}/admin/api/stats`, {
      headers: { authorization: 'Bearer wrong' },
    });
    assert.equal(wrong.status, 401);
    assert.equal((await post('/admin/api/session', { id: 'x-session' }, {})).status, 401);
    const crossSite = await fetch(`${base}/admin/api/stats`, {
      headers: { ...AUTH, origin: 'https://evil.example' },
    });
    assert.equal(crossSite.status, 403);
    assert.equal((await fetch(`${base}/admin/api/stats`, { headers: AUTH })).status, 200);
  });

  it('reports the live numbers and the history the charts draw', async () => {
    const { server, base, post } = await start();
    await post('/v1/command', ['CREATE', 'stats-session-1', 'CLASS', 'shop']);
    await server.activity!.sample();
    const stats = (await (await fetch(`${base}/admin/api/stats`, { headers: AUTH })).json()) as {
      sessions: number;
      store: string;
      stepMs: number;
      history: Array<{ at: number; sessions: number; classes: Record<string, number> }>;
    };
    assert.equal(stats.sessions, 1);
    assert.equal(stats.store, 'memory');
    assert.equal(stats.stepMs, 10_000);
    assert.deepEqual(stats.history.at(-1)!.classes, { shop: 1 });
    const last = stats.history.at(-1)!.at;
    const since = (await (
      await fetch(`${base}/admin/api/stats?since=${last + 1}`, { headers: AUTH })
    ).json()) as { history: unknown[] };
    assert.deepEqual(since.history, []);
    const bad = await fetch(`${base}/admin/api/stats?since=yesterday`, { headers: AUTH });
    assert.equal(bad.status, 400);
  });

  it('shows a session whole, lock and expiry included, without recording an access', async () => {
    const { clock, post } = await start();
    await post('/v1/command', ['CREATE', 'whole-session-1', 'DATA', 'blob', 'TIMEOUT', '600']);
    await post('/v1/command', ['SET', 'whole-session-1', 'cart', '<b>3</b>']);
    await post('/v1/command', ['SETUSER', 'whole-session-1', 'alice']);
    const key = (
      (await (await post('/v1/command', ['LOCK', 'whole-session-1'])).json()) as {
        result: number;
      }
    ).result;
    const created = clock.now();
    clock.advance(5_000);
    const response = await post('/admin/api/session', { id: 'whole-session-1' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await response.json(), {
      id: 'whole-session-1',
      class: 'default',
      user: 'alice',
      data: 'blob',
      vars: { cart: '<b>3</b>' },
      created,
      touched: created,
      timeout: 600,
      expires: 0,
      deadline: created + 600_000,
      lock: { key, until: created + 30_000 },
      readonly: false,
    });
    // Looking did not touch it: the last access is still its creation.
    const again = (await (await post('/admin/api/session', { id: 'whole-session-1' })).json()) as {
      touched: number;
    };
    assert.equal(again.touched, created);
  });

  it('takes the id in a POST body, never in the URL, and says NOSESSION or BADID', async () => {
    const { base, post } = await start();
    const get = await fetch(`${base}/admin/api/session?id=abc`, { headers: AUTH });
    assert.equal(get.status, 405);
    const missing = await post('/admin/api/session', { id: 'no-such-session' });
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'NOSESSION');
    const empty = await post('/admin/api/session', { id: '' });
    assert.equal(((await empty.json()) as { error: { code: string } }).error.code, 'BADID');
    const extra = await post('/admin/api/session', { id: 'a-session', sid: 'b' });
    assert.equal(extra.status, 400);
  });

  it('is not there when the HTTP port is off', async () => {
    const server = await startTestServer();
    servers.push(server);
    assert.equal(server.httpAddress, null);
    assert.equal(server.activity, null);
  });
});
