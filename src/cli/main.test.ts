import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RawClient } from '../server/test-support.ts';

const bin = new URL('../../bin/sessiond.js', import.meta.url).pathname;

/** Starts `sessiond serve` with `args`; resolves with the process and its RESP port. */
async function start(args: string[]) {
  const child = spawn(
    process.execPath,
    [bin, 'serve', '--port', '0', '--http-port', '0', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /RESP on [^:]+:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, port, exited };
}

describe('sessiond serve', () => {
  it('serves on the embedded SQLite store and exits cleanly on SIGTERM, keeping the sessions', async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'sessiond-serve-')), 'sessions.db');
    const first = await start(['--store', `sqlite:${db}`]);
    const client = await RawClient.connect(first.port);
    assert.equal(await client.call('CREATE', 'kept'), 1);
    assert.equal(await client.call('SET', 'kept', 'a', '1'), 1);
    first.child.kill('SIGTERM');
    assert.equal(await first.exited, 0);
    const second = await start(['--store', `sqlite:${db}`]);
    const again = await RawClient.connect(second.port);
    assert.equal(await again.call('GET', 'kept', 'a'), '1');
    second.child.kill('SIGINT');
    assert.equal(await second.exited, 0);
  });

  it('refuses a bad setting with a message and a non-zero exit', async () => {
    const child = spawn(process.execPath, [bin, 'serve', '--store', 'nosuch://x'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(err, /unknown store/);
  });
});

describe('operator verbs', () => {
  it('info, list, show, gc and empty --yes work against a running server', async () => {
    const server = await start(['--store', 'memory', '--password', 'pw']);
    try {
      const client = await RawClient.connect(server.port);
      await client.call('AUTH', 'pw');
      await client.call('CREATE', 'op1', 'TIMEOUT', '1000');
      await client.call('SET', 'op1', 'cart', '3');
      await client.call('SETUSER', 'op1', 'alice');
      const verb = async (...args: string[]) => {
        const child = spawn(process.execPath, [
          bin,
          ...args,
          '--port',
          String(server.port),
          '--password',
          'pw',
        ]);
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
        const code = await new Promise((resolve) => child.once('exit', resolve));
        return { code, out };
      };
      assert.match((await verb('info')).out, /sessions:1/);
      assert.equal((await verb('list')).out.trim(), 'op1');
      const shown = (await verb('show', 'op1')).out;
      assert.match(shown, /user: +alice/);
      assert.match(shown, /"cart" = "3"/);
      assert.match((await verb('gc')).out, /0 expired sessions removed/);
      const refused = await verb('empty');
      assert.equal(refused.code, 2);
      assert.match((await verb('empty', '--yes')).out, /1 sessions removed/);
      assert.match((await verb('show', 'op1')).out, /NOSESSION/);
      client.close();
    } finally {
      server.child.kill('SIGTERM');
      assert.equal(await server.exited, 0);
    }
  });
});
