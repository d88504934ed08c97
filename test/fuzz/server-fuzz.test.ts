import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import type { SessiondServer } from '../../src/server/server.ts';
import { RawClient, startTestServer } from '../../src/server/test-support.ts';
import { formatReport, runFuzz } from './fuzz-run.ts';
import { badErrorBody, readHttpResponses } from './wire.ts';

/** Lighter than the script's: other test files run beside this one on a small machine. */
const CI_LANES = { resp: 4, http: 4, slow: 4, heavy: 1 };
const FIXED_SEED = 20_261_122;
const RANDOM_SEED = Math.floor(Math.random() * 2 ** 31);

describe('sessiond under fuzz', () => {
  for (const [which, seed] of [
    ['a fixed seed', FIXED_SEED],
    ['a random seed', RANDOM_SEED],
  ] as const) {
    it(`keeps serving a control client over both ports, with ${which} (${seed})`, async () => {
      const report = await runFuzz({ seconds: 6, seed, lanes: CI_LANES, idleMs: 500 });
      // The whole report on failure: it names the seed to replay with.
      assert.deepEqual(report.failures, [], formatReport(report));
      assert.ok(report.control.ops > 0, 'the control client ran');
      assert.ok(report.server.alive && report.server.answersAfter, formatReport(report));
    });
  }
});

const servers: SessiondServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => server.close()));
});

async function start(options: Parameters<typeof startTestServer>[0] = {}) {
  const server = await startTestServer({ http: { port: 0 }, ...options });
  servers.push(server);
  return server;
}

/** Sends raw bytes to `port`; everything received until the server closes (or 5 s pass). */
async function exchange(
  port: number,
  bytes: string | Buffer,
): Promise<{ text: Buffer; closed: boolean }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.write(bytes);
  const result = await closed;
  socket.destroy();
  return { text: Buffer.concat(chunks), closed: result };
}

describe('HTTP port: malformed requests', () => {
  const head = 'POST /v1/command HTTP/1.1\r\nHost: 127.0.0.1\r\n';
  const cases: Array<[string, string, number]> = [
    [
      'an HTTP/1.1 request without Host',
      'POST /v1/command HTTP/1.1\r\nContent-Length: 8\r\n\r\n["PING"]',
      400,
    ],
    [
      'Content-Length and Transfer-Encoding both (request smuggling)',
      `${head}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
    ],
    [
      'two different Content-Lengths',
      `${head}Content-Length: 8\r\nContent-Length: 9\r\n\r\n["PING"]`,
      400,
    ],
    ['a negative Content-Length', `${head}Content-Length: -1\r\n\r\n`, 400],
    ['a folded header line', `${head}X: a\r\n b\r\nContent-Length: 8\r\n\r\n["PING"]`, 400],
    ['headers over 16 KiB', `${head}X: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    [
      'an Expect the server does not meet',
      `${head}Expect: teapot\r\nContent-Length: 8\r\n\r\n["PING"]`,
      417,
    ],
  ];
  for (const [what, bytes, status] of cases) {
    it(`answers ${what} with ${status} and an error body with a code`, async () => {
      const server = await start();
      const { text } = await exchange(server.httpAddress!.port, `${bytes}`);
      const [answer] = readHttpResponses(text).responses;
      assert.equal(answer?.status, status, text.toString('latin1'));
      assert.equal(badErrorBody(answer), undefined);
    });
  }

  it('refuses a body nested deeper than 8 before parsing it, with 400 ERR', async () => {
    const server = await start();
    const base = `http://127.0.0.1:${server.httpAddress!.port}/v1/command`;
    // 16 MiB of brackets parse into 8M arrays: seconds of blocked event loop, ~450 MiB of heap.
    const depth = 1_000_000;
    const deep = await fetch(base, { method: 'POST', body: '['.repeat(depth) + ']'.repeat(depth) });
    assert.equal(deep.status, 400);
    assert.deepEqual(await deep.json(), {
      error: { code: 'ERR', message: 'request body nests deeper than 8' },
    });
    // Brackets and escaped quotes inside strings are not nesting.
    const text = '[[[[[[[[[["\\"]]]]]]]]]]';
    const echo = await fetch(base, { method: 'POST', body: JSON.stringify(['PING', text]) });
    assert.deepEqual(await echo.json(), { result: text });
    const wrapped = await fetch(`${base}/ping`, {
      method: 'POST',
      body: JSON.stringify({ args: [{ base64: Buffer.from('hi').toString('base64') }] }),
    });
    assert.deepEqual(await wrapped.json(), { result: 'hi' });
  });

  it('refuses a body of more than 131072 values with 413 LIMIT', async () => {
    const server = await start();
    const base = `http://127.0.0.1:${server.httpAddress!.port}/v1/command`;
    const many = await fetch(base, { method: 'POST', body: '[' + '[],'.repeat(200_000) + '[]]' });
    assert.equal(many.status, 413);
    assert.equal(((await many.json()) as { error: { code: string } }).error.code, 'LIMIT');
    const commas = 'a,'.repeat(200_000);
    const inString = await fetch(base, { method: 'POST', body: JSON.stringify(['PING', commas]) });
    assert.deepEqual(await inString.json(), { result: commas });
  });
});

it('the value limit is twice maxArgs, the same setting as on the RESP port, at its edge', async () => {
  const server = await start({ resp: { decoderLimits: { maxArgs: 4 } } });
  const post = async (args: string[]) => {
    const answer = await fetch(`http://127.0.0.1:${server.httpAddress!.port}/v1/command`, {
      method: 'POST',
      body: JSON.stringify(args),
    });
    return `${answer.status} ${((await answer.json()) as { error?: { code: string } }).error?.code}`;
  };
  // One array and seven commas: 8 values, within the limit (PING then refuses its arity).
  assert.equal(await post(['PING', '1', '2', '3', '4', '5', '6', '7']), '400 ERR');
  assert.equal(await post(['PING', '1', '2', '3', '4', '5', '6', '7', '8']), '413 LIMIT');
});

describe('RESP port: abuse the existing tests do not cover', () => {
  const cases: Array<[string, string]> = [
    ['arrays nested in a request', '*1\r\n*1\r\n*1\r\n$4\r\nPING\r\n'],
    ['an inline line past maxInline', 'PING ' + 'a'.repeat(70_000)],
    ['an HTTP request sent to the RESP port', 'POST /v1/command HTTP/1.1\r\nHost: x\r\n\r\n'],
  ];
  for (const [what, bytes] of cases) {
    it(`${what} gets a protocol error and a closed connection`, async () => {
      const server = await start({ http: false });
      const { text, closed } = await exchange(server.respAddress.port, bytes);
      assert.match(text.toString('latin1'), /^-ERR Protocol error: /);
      assert.ok(closed, 'the server closed the connection');
    });
  }

  it('a subscriber that never reads is cut off at maxOutputBuffer; others carry on', async () => {
    const server = await start({ http: false, resp: { port: 0, maxOutputBuffer: 64 * 1024 } });
    const deaf = await RawClient.connect(server.respAddress.port);
    deaf.send('SUBSCRIBE', 'events:created');
    await deaf.reply();
    deaf.socket.pause();
    const writer = await RawClient.connect(server.respAddress.port);
    // Long ids make big events: more than the kernel's socket buffers and the limit together.
    const id = (i: number) => `${'s'.repeat(200)}${i}`;
    for (let batch = 0; batch < 100 && server.stats.outputBufferDisconnects === 0; batch++) {
      for (let i = 0; i < 500; i++) writer.send('CREATE', id(batch * 500 + i));
      for (let i = 0; i < 500; i++) await writer.reply();
    }
    assert.equal(server.stats.outputBufferDisconnects, 1);
    deaf.socket.resume(); // a paused socket never sees its end
    await deaf.closedByServer(10_000);
    assert.deepEqual(await writer.call('PING'), { simple: 'PONG' });
    writer.close();
  });
});
