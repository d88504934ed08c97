import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { SessiondClient } from '../../client/client.ts';
import type { SessiondServer } from '../server.ts';
import { startTestServer } from '../test-support.ts';

/** Debian's chromium; the test is skipped where it is not installed. */
const CHROMIUM = '/usr/bin/chromium';
const PASSWORD = 'browser-test-secret';
/** A value that would run script if the page ever rendered data as markup. */
const XSS = '<img src=x onerror=alert(1)>';
const WAIT = { timeout: 10_000 };

describe(
  'the admin page in a real browser',
  { skip: !existsSync(CHROMIUM) && 'no chromium' },
  () => {
    let server: SessiondServer;
    let client: SessiondClient;
    let context: BrowserContext;
    let page: Page;
    let base: string;
    const profile = mkdtempSync(join(tmpdir(), 'sessiond-chromium-'));
    const shots = mkdtempSync(join(tmpdir(), 'sessiond-admin-shots-'));
    const dialogs: string[] = [];
    const pageErrors: string[] = [];

    before(async () => {
      server = await startTestServer({ http: { port: 0 }, auth: { password: PASSWORD } });
      base = `http://127.0.0.1:${server.httpAddress!.port}`;
      client = await SessiondClient.connect({ port: server.respAddress.port, password: PASSWORD });
      // A fresh profile each run: nothing remembered from an earlier one.
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-dev-shm-usage',
          '--disable-background-networking',
          '--disable-component-update',
          '--no-first-run',
          '--disable-sync',
        ],
        viewport: { width: 1280, height: 1400 },
      });
      page = context.pages()[0] ?? (await context.newPage());
      page.on('dialog', (dialog) => {
        dialogs.push(dialog.message());
        void dialog.dismiss();
      });
      page.on('pageerror', (error) => pageErrors.push(error.message));
    });

    after(async () => {
      await context?.close();
      await client?.disconnect();
      await server?.close();
      rmSync(profile, { recursive: true, force: true });
    });

    it('shows the sessions, finds one by user, shows its values as text, and destroys it', async (t) => {
      const alice = 'alice-session-0000000000000001';
      await client.create(alice, { cls: 'shop' });
      await client.setUser(alice, 'alice');
      await client.setArray(alice, { cart: '3', note: XSS });
      await client.setData(alice, `data ${XSS}`);
      await client.create('bob-session-00000000000000001', { cls: 'shop' });
      await client.create('anon-session-0000000000000001', { cls: 'forum' });
      await server.activity!.sample();

      await page.goto(`${base}/admin`);
      // No credentials yet: the page asks for them.
      await page.locator('#login').waitFor({ state: 'visible', ...WAIT });
      await page.getByLabel("The server's password").fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#app').waitFor({ state: 'visible', ...WAIT });
      await page.locator('#n-sessions', { hasText: /^3$/ }).waitFor(WAIT);
      assert.deepEqual(await page.locator('#legend-classes li').allTextContents(), [
        'all',
        'forum',
        'shop',
      ]);
      // The password stays in this tab's sessionStorage, never in a cookie.
      assert.deepEqual(await context.cookies(), []);

      await page.locator('#find-by').selectOption('user');
      await page.locator('#find-a').fill('alice');
      await page.getByRole('button', { name: 'Find' }).click();
      const row = page.locator('#results tbody tr');
      await row.first().waitFor(WAIT);
      assert.deepEqual(await row.locator('code').allTextContents(), [alice]);

      await row.getByRole('button', { name: 'Open' }).click();
      await page.locator('#session').waitFor({ state: 'visible', ...WAIT });
      assert.equal(await page.locator('#session-id').textContent(), alice);
      const vars: string[][] = [];
      for (const tr of await page.locator('#session-vars tbody tr').all()) {
        vars.push(await tr.locator('td').allTextContents());
      }
      assert.deepEqual(vars, [
        ['cart', '3'],
        ['note', XSS],
      ]);
      assert.equal(await page.locator('#session-data').textContent(), `data ${XSS}`);
      // Shown as text: no element was made from the value, and nothing ran.
      assert.equal(await page.locator('img').count(), 0);
      assert.deepEqual(dialogs, []);
      assert.deepEqual(pageErrors, []);

      const shot = join(shots, 'admin.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(statSync(shot).size > 10_000);
      copyFileSync(shot, '/tmp/admin-screenshot.png');
      t.diagnostic(`screenshot: ${shot} (and /tmp/admin-screenshot.png)`);

      await page.getByRole('button', { name: 'Destroy session' }).click();
      // Nothing happens on the first click: the page asks to confirm.
      assert.equal(await client.ctl(alice, 'EXIST'), 1);
      await page.getByRole('button', { name: 'Confirm' }).click();
      await page.locator('#session').waitFor({ state: 'hidden', ...WAIT });
      await page.locator('#status', { hasText: /^Destroyed session/ }).waitFor(WAIT);
      assert.equal(await client.ctl(alice, 'EXIST'), 0);
      assert.equal(await client.count(), 2);
      assert.deepEqual(dialogs, []);
    });

    it('runs EMPTY only once the word is typed out', async () => {
      const button = page.locator('#empty');
      assert.equal(await button.isDisabled(), true);
      await page.locator('#empty-confirm').fill('EMPT');
      assert.equal(await button.isDisabled(), true);
      await page.locator('#empty-confirm').fill('EMPTY');
      await button.click();
      await page.locator('#status', { hasText: /^Removed 2 sessions\.$/ }).waitFor(WAIT);
      assert.equal(await client.count(), 0);
    });

    it('forgets the password on request, and then shows no data', async () => {
      await page.getByRole('button', { name: 'Forget password' }).click();
      await page.locator('#login').waitFor({ state: 'visible', ...WAIT });
      assert.equal(await page.locator('#app').isHidden(), true);
      assert.equal(await page.evaluate('sessionStorage.length'), 0);
    });
  },
);
