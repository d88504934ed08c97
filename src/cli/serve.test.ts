import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { request as httpRequest } from 'node:http';
import { describe, it } from 'node:test';
import { RawClient } from '../server/test-support.ts';
import { otherLimits } from './serve.ts';

const bin = new URL('../../bin/sessiond.js', import.meta.url).pathname;
const SID = 'Zq8mW3xK7pN2rT5vY9bC4dF6gH1jL0sA';

/** `sessiond serve` over a memory store on a free RESP port, HTTP off, with `args` added. */
async function serveMemory(args: string[]) {
  const child = spawn(
    process.execPath,
    [bin, 'serve', '--store', 'memory', '--port', '0', '--http-port=-1', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  // 'close', not 'exit': the exit code, once stdout has also been read to its end.
  const exited = new Promise((resolve) => child.once('close', resolve));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = /RESP on [^:]+:(\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return { child, port, exited, output: () => out };
}

describe('sessiond serve logs', () => {
  it('are JSON lines at the chosen level, from start to stop, with session ids shortened', async () => {
    const { child, port, exited, output } = await serveMemory(['--log-level', 'debug']);
    const client = await RawClient.connect(port);
    assert.equal(await client.call('CREATE', SID), 1);
    client.close();
    child.kill('SIGTERM');
    assert.equal(await exited, 0);

    const out = output();
    const lines = out
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.equal(lines[0]!.level, 'info');
    assert.equal(lines[0]!.store, 'memory');
    assert.match(lines[0]!.resp as string, /^127\.0\.0\.1:\d+$/);
    const created = lines.find((line) => line.event === 'created');
    assert.equal(created?.level, 'debug');
    assert.equal(created?.sid, 'Zq8m…');
    assert.equal(lines.at(-1)!.msg, 'stopped');
    assert.ok(!out.includes(SID));
  });

  it('refuse a level they do not know', async () => {
    const child = spawn(process.execPath, [bin, 'serve', '--log-level', 'loud'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    assert.equal(await new Promise((resolve) => child.once('exit', resolve)), 1);
    assert.match(err, /--log-level: expected one of fatal, error, warn, info, debug/);
  });
});

describe('sessiond serve limits', () => {
  it('--max-result-ids reaches the engine: LIST past it answers LIMIT', async () => {
    const { child, port, exited } = await serveMemory(['--max-result-ids', '2']);
    const client = await RawClient.connect(port);
    try {
      await client.call('CREATE', 'a');
      await client.call('CREATE', 'b');
      assert.equal(((await client.call('LIST')) as string[]).length, 2);
      await client.call('CREATE', 'c');
      assert.match(((await client.call('LIST')) as { error: string }).error, /^LIMIT .*exceeds 2/);
    } finally {
      client.close();
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});

describe('sessiond serve, every limit has a setting', () => {
  it('--limit NAME=N sets any engine limit; a bad or flagged name is refused', () => {
    assert.deepEqual(otherLimits(['maxLeaseMs=100', 'maxListCount=5']), {
      maxLeaseMs: 100,
      maxListCount: 5,
    });
    assert.throws(() => otherLimits(['maxLeases=1']), /--limit: expected NAME=N .*maxLeaseMs/);
    assert.throws(() => otherLimits(['maxLeaseMs=-1']), /--limit: expected NAME=N/);
    assert.throws(() => otherLimits(['maxLeaseMs']), /--limit: expected NAME=N/);
    assert.throws(() => otherLimits(['maxVars=3']), /own flag, --max-vars/);
  });

  it('--limit and --max-body-bytes reach the engine and the HTTP port', async () => {
    const { child, port, exited, output } = await serveMemory([
      '--limit',
      'maxLeaseMs=100',
      '--http-port',
      '0',
      '--max-body-bytes',
      '64',
    ]);
    const client = await RawClient.connect(port);
    try {
      await client.call('CREATE', SID);
      assert.equal(typeof (await client.call('LOCK', SID, 'LEASE', '100')), 'number');
      const over = (await client.call('LOCK', SID, 'LEASE', '101')) as { error: string };
      assert.match(over.error, /^LIMIT .*maxLeaseMs/);
      const [, httpPort] = /HTTP on [^:]+:(\d+)/.exec(output()) ?? [];
      const post = (body: string) =>
        fetch(`http://127.0.0.1:${httpPort}/v1/command`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
      assert.equal((await post(JSON.stringify(['PING']))).status, 200);
      assert.equal((await post(JSON.stringify(['PING', 'x'.repeat(64)]))).status, 413);
    } finally {
      client.close();
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});

describe('sessiond serve HTTP', () => {
  it('--http-allowed-hosts adds names to IP literals and localhost; others get 403', async () => {
    const { child, exited, output } = await serveMemory([
      '--http-port',
      '0',
      '--http-allowed-hosts',
      'sessions.test',
    ]);
    try {
      const [, port] = /HTTP on [^:]+:(\d+)/.exec(output()) ?? [];
      assert.ok(port, output());
      /** The status of GET /v1/commands with `host` as the Host header. */
      const status = (host: string) =>
        new Promise<number>((resolve, reject) => {
          const req = httpRequest(
            { host: '127.0.0.1', port: Number(port), path: '/v1/commands', headers: { host } },
            (res) => {
              res.resume();
              resolve(res.statusCode!);
            },
          );
          req.on('error', reject);
          req.end();
        });
      assert.equal(await status(`sessions.test:${port}`), 200);
      assert.equal(await status(`localhost:${port}`), 200);
      // A name it was not given: what a DNS rebinding page would send.
      assert.equal(await status(`rebind.attacker.test:${port}`), 403);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});

describe('sessiond serve HTTP connections', () => {
  it('--max-http-connections 1 closes a second connection unanswered while the first is open', async () => {
    const { child, exited, output } = await serveMemory([
      '--http-port',
      '0',
      '--max-http-connections',
      '1',
    ]);
    const sockets: Array<ReturnType<typeof netConnect>> = [];
    /** A connection to the HTTP port that sends one keep-alive request at once. */
    const open = async (port: number) => {
      const socket = netConnect(port, '127.0.0.1');
      sockets.push(socket);
      socket.on('error', () => {});
      await once(socket, 'connect');
      socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
      return socket;
    };
    try {
      const [, port] = /HTTP on [^:]+:(\d+)/.exec(output()) ?? [];
      assert.ok(port, output());
      const first = await open(Number(port));
      const [answer] = (await once(first, 'data')) as [Buffer];
      assert.match(answer.toString(), /^HTTP\/1\.1 200 /);
      const second = await open(Number(port));
      const received: Buffer[] = [];
      second.on('data', (chunk: Buffer) => received.push(chunk));
      // Closed, by a reset or an end: either way, before any answer.
      await new Promise((resolve) => second.once('close', resolve));
      assert.equal(Buffer.concat(received).length, 0);
    } finally {
      for (const socket of sockets) socket.destroy();
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });
});

describe('sessiond serve TLS', () => {
  it('--tls-cert and --tls-key make both ports speak TLS only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sessiond-serve-tls-'));
    try {
      execFileSync(
        'openssl',
        [
          ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'],
          ...['-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
          ...['-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'],
        ],
        { stdio: 'ignore' },
      );
      const ca = readFileSync(join(dir, 'cert.pem'));
      const { child, port, exited, output } = await serveMemory([
        ...['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')],
        ...['--http-port', '0'],
      ]);
      try {
        // RESP over TLS, the certificate checked against the test's own CA.
        const secure = tlsConnect({ host: '127.0.0.1', port, ca });
        secure.write('PING\r\n');
        const [answer] = (await once(secure, 'data')) as [Buffer];
        assert.equal(answer.toString(), '+PONG\r\n');
        secure.destroy();
        // Plaintext gets no answer: defends against credentials and ids crossing in the clear.
        const plain = netConnect(port, '127.0.0.1');
        plain.on('error', () => {});
        let heard = '';
        plain.on('data', (chunk: Buffer) => (heard += chunk.toString('latin1')));
        plain.write('PING\r\n');
        await once(plain, 'close');
        assert.ok(!heard.includes('+PONG'), heard);
        const [, httpPort] = /HTTP on [^:]+:(\d+)/.exec(output()) ?? [];
        const status = await new Promise<number>((resolve, reject) => {
          httpsGet({ host: '127.0.0.1', port: Number(httpPort), path: '/healthz', ca }, (res) => {
            res.resume();
            resolve(res.statusCode!);
          }).on('error', reject);
        });
        assert.equal(status, 200);
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses one of --tls-cert and --tls-key without the other', async () => {
    const child = spawn(
      process.execPath,
      [bin, 'serve', '--store', 'memory', '--tls-cert', 'c.pem'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    assert.equal(await new Promise((resolve) => child.once('exit', resolve)), 1);
    assert.match(err, /--tls-cert and --tls-key go together/);
  });
});
