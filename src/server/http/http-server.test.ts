import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { Engine, type EngineOptions } from '../../core/engine.ts';
import { MemoryStore } from '../../store/memory/memory-store.ts';
import { Auth, type AuthOptions } from '../auth.ts';
import type { CommandContext } from '../commands/table.ts';
import { PubSub } from '../pubsub.ts';
import { ServerStats } from '../stats.ts';
import { HttpServer, type HttpServerOptions } from './http-server.ts';

interface Setup {
  engine?: Partial<EngineOptions>;
  auth?: AuthOptions;
  http?: Partial<HttpServerOptions>;
  info?: () => Promise<string>;
}

const servers: HttpServer[] = [];
const sockets: Socket[] = [];
after(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => server.close()));
});

async function start(setup: Setup = {}) {
  const engine = new Engine({
    store: new MemoryStore(),
    clock: new ManualClock(),
    ...setup.engine,
  });
  const context: CommandContext = { engine, info: setup.info ?? (async () => 'x') };
  const stats = new ServerStats();
  const pubsub = new PubSub(engine);
  const errors: unknown[] = [];
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    maxConnections: 100,
    context,
    auth: new Auth(setup.auth),
    stats,
    pubsub,
    onError: (error) => errors.push(error),
    ...setup.http,
  });
  servers.push(server);
  const { port } = await server.listen();
  const base = `http://127.0.0.1:${port}`;
  return { engine, stats, pubsub, server, errors, port, base };
}

interface Answer {
  status: number;
  headers: Headers;
  body: { result?: unknown; error?: { code: string; message: string } };
}

async function request(url: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(url, init);
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: text === '' ? {} : (JSON.parse(text) as Answer['body']),
  };
}

/** POSTs `body` as JSON to /v1/command. */
function command(base: string, body: unknown, headers: Record<string, string> = {}) {
  return request(`${base}/v1/command`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

/** Runs a command and returns its result, failing the test on an error. */
async function result(base: string, ...args: unknown[]): Promise<unknown> {
  const answer = await command(base, args);
  assert.equal(answer.status, 200, `${JSON.stringify(args)}: ${JSON.stringify(answer.body)}`);
  return answer.body.result;
}

/** A raw socket, for what fetch cannot do: hold a connection, send bytes that are not HTTP. */
async function rawSocket(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  done: (text: string) => boolean,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  while (!done(text)) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`stream ended after ${JSON.stringify(text)}`);
    text += decoder.decode(chunk.value, { stream: true });
  }
  return text;
}

describe('HTTP door: commands', () => {
  it('answers each msession verb with {"result": ...} in the shape of its reply', async () => {
    const { base, engine } = await start();
    engine.plugins.setEscape((sid, val, param) => `${sid}:${val}:${param ?? ''}`);
    engine.plugins.register('join', (args) => args.join('+'));
    const steps: Array<[string[], unknown]> = [
      [['PING'], 'PONG'],
      [['ping', 'hi'], 'hi'],
      [['INFO'], 'x'],
      [['CREATE', 's1', 'CLASS', 'shop', 'DATA', 'blob', 'TIMEOUT', '100'], 1],
      [['CREATE', 's1'], 0],
      [['SET', 's1', 'a', '1', 'b', '2'], 1],
      [['GET', 's1', 'a'], '1'],
      [['GET', 's1', 'zz'], null],
      [['GET', 's1', 'zz', 'dflt'], 'dflt'],
      [['GETALL', 's1'], { a: '1', b: '2' }],
      [['INC', 's1', 'n'], 1],
      [['INC', 's1', 'n', '-5'], -4],
      [['UNSET', 's1', 'n', 'nope'], 1],
      [['SETDATA', 's1', 'blob2'], 1],
      [['GETDATA', 's1'], 'blob2'],
      [['SETDATA', 'fresh', 'made'], 1],
      [['SET', 's1', 'user', 'alice'], 1],
      [['FIND', 'user', 'alice'], ['s1']],
      [['LISTVAR', 'user'], { s1: 'alice' }],
      [['COUNT'], 2],
      [['COUNT', 'CLASS', 'shop'], 1],
      [['LIST', 'CLASS', 'shop'], ['s1']],
      [
        ['LIST', 'CURSOR', '0', 'COUNT', '10', 'CLASS', 'shop'],
        ['0', ['s1']],
      ],
      [['TIMEOUT', 's1'], 100],
      [['TIMEOUT', 's1', '200'], 200],
      [['CTL', 's1', 'exist'], 1],
      [['CTL', 's1', 'TTL'], 200],
      [['TOUCH', 's1'], 1],
      [['TOUCH', 'nope'], 0],
      [['EXPIRE', 's1', '50'], 1],
      [['CTL', 's1', 'TTL'], 50],
      [['PERSIST', 's1'], 1],
      [['LOCK', 's1'], 1],
      [['UNLOCK', 's1', '2'], 0],
      [['UNLOCK', 's1', '1'], 1],
      [['PLUGIN', 's1', 'v', 'p'], 's1:v:p'],
      [['CALL', 'join', 'a', 'b'], 'a+b'],
      [['SETUSER', 's1', 'bob'], 1],
      [['GETUSER', 's1'], 'bob'],
      [['GETUSER', 'fresh'], null],
      [['USERSESSIONS', 'bob'], ['s1']],
      [['DESTROY', 'fresh'], 1],
      [['DESTROY', 'fresh'], 0],
      [['GC'], 0],
    ];
    for (const [args, expected] of steps) {
      assert.deepEqual(await result(base, ...args), expected, args.join(' '));
    }
  });

  it('makes ids and random strings, regenerates, destroys by user and empties', async () => {
    const { base } = await start();
    assert.match(String(await result(base, 'UNIQ', '22')), /^[A-Za-z0-9]{22}$/);
    assert.match(String(await result(base, 'RANDSTR', '40')), /^[A-Za-z0-9]{40}$/);
    await result(base, 'CREATE', 'p0');
    await result(base, 'SET', 'p0', 'k', 'v');
    const fresh = String(await result(base, 'REGENERATE', 'p0'));
    assert.equal(await result(base, 'GET', fresh, 'k'), 'v');
    await result(base, 'SETUSER', fresh, 'bob');
    await result(base, 'CREATE', 'p1');
    await result(base, 'SETUSER', 'p1', 'bob');
    assert.equal(await result(base, 'DESTROYUSER', 'bob', 'EXCEPT', 'p1'), 1);
    assert.equal(await result(base, 'EMPTY'), 2);
    assert.equal(await result(base, 'COUNT'), 0);
  });

  it('runs POST /v1/command/:name with {"args": [...]}, the name in any case', async () => {
    const { base } = await start();
    const post = (name: string, body?: unknown) =>
      request(`${base}/v1/command/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    assert.deepEqual((await post('create', { args: ['s'] })).body, { result: 1 });
    assert.deepEqual((await post('Set', { args: ['s', 'a', '1'] })).body, { result: 1 });
    assert.deepEqual((await post('GET', { args: ['s', 'a'] })).body, { result: '1' });
    assert.deepEqual((await post('count')).body, { result: 1 });
    assert.deepEqual((await post('ping', {})).body, { result: 'PONG' });
    const typo = await post('GET', { arg: ['s', 'a'] });
    assert.equal(typo.status, 400);
    assert.equal(typo.body.error?.code, 'ERR');
  });

  it('counts every command run in stats.commands', async () => {
    const { base, stats } = await start();
    await result(base, 'PING');
    await command(base, ['GET', 'nope', 'a']);
    assert.equal(stats.commands, 2);
  });

  it('lists the command table at GET /v1/commands', async () => {
    const { base } = await start();
    const answer = await fetch(`${base}/v1/commands`);
    const { commands } = (await answer.json()) as {
      commands: Array<{ name: string; summary: string; min: number; max: number | null }>;
    };
    const set = commands.find((c) => c.name === 'SET');
    assert.deepEqual(set && { min: set.min, max: set.max }, { min: 3, max: null });
    assert.ok(commands.some((c) => c.name === 'EMPTY'));
    assert.ok(commands.every((c) => c.summary.length > 0));
    // No command loads or runs code: msession's PLUGIN loaded any .so a client named; here
    // plugins come only from the operator's --plugin (defends against remote code execution).
    const names = new Set(commands.map((c) => c.name));
    for (const verb of [
      'EVAL',
      'EVALSHA',
      'SCRIPT',
      'FUNCTION',
      'MODULE',
      'LOAD',
      'CONFIG',
      'DEBUG',
    ]) {
      assert.ok(!names.has(verb), verb);
    }
    // Replies are never cached or sniffed as another type.
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
    const reply = await command(base, ['PING']);
    assert.equal(reply.headers.get('cache-control'), 'no-store');
    assert.equal(reply.headers.get('x-content-type-options'), 'nosniff');
  });

  it('refuses the connection-only commands and points at their HTTP form', async () => {
    const { base } = await start();
    for (const name of ['AUTH', 'HELLO', 'QUIT', 'SUBSCRIBE', 'psubscribe']) {
      const answer = await command(base, [name, 'x']);
      assert.equal(answer.status, 400, name);
      assert.match(answer.body.error?.message ?? '', /not a command over HTTP/);
    }
  });
});

describe('HTTP door: values', () => {
  it('round-trips Unicode text, stored as its UTF-8 bytes', async () => {
    const { base, engine } = await start();
    await result(base, 'CREATE', 's');
    await result(base, 'SET', 's', 'ключ', 'héllo ✓');
    assert.equal(await result(base, 'GET', 's', 'ключ'), 'héllo ✓');
    assert.deepEqual(await result(base, 'GETALL', 's'), { ключ: 'héllo ✓' });
    // What a RESP client reads: the UTF-8 bytes, one per code unit.
    const stored = await engine.get('s', Buffer.from('ключ').toString('latin1'));
    assert.equal(stored, Buffer.from('héllo ✓').toString('latin1'));
  });

  it('takes and gives bytes that are not UTF-8 as {"base64": ...}', async () => {
    const { base, engine } = await start();
    await result(base, 'CREATE', 's');
    await result(base, 'SET', 's', 'bin', { base64: '/wA=' });
    assert.equal(await engine.get('s', 'bin'), '\xff\x00');
    assert.deepEqual(await result(base, 'GET', 's', 'bin'), { base64: '/wA=' });
    const bad = await command(base, ['SET', 's', 'bin', { base64: 'not base64!' }]);
    assert.equal(bad.status, 400);
  });

  it('answers a map with a key that is not text as [key, value] pairs', async () => {
    const { base, engine } = await start();
    await engine.create('s');
    await engine.set('s', '\xff', 'v');
    assert.deepEqual(await result(base, 'GETALL', 's'), [[{ base64: '/w==' }, 'v']]);
  });

  it('keeps "__proto__" a variable name: an own property of the result, not its prototype', async () => {
    const { base } = await start();
    await result(base, 'CREATE', 's');
    await result(base, 'SET', 's', '__proto__', 'x', 'constructor', 'y');
    const all = (await result(base, 'GETALL', 's')) as Record<string, unknown>;
    assert.ok(Object.hasOwn(all, '__proto__'));
    assert.equal(Object.getOwnPropertyDescriptor(all, '__proto__')?.value, 'x');
    assert.equal(Object.getPrototypeOf(all), Object.prototype);
    assert.equal(all.constructor, 'y');
  });

  it('gives integers past 2^53 as decimal strings so no digit is lost', async () => {
    const { base } = await start();
    await result(base, 'CREATE', 's');
    assert.equal(
      await result(base, 'INC', 's', 'big', '9223372036854775807'),
      '9223372036854775807',
    );
    assert.equal(await result(base, 'INC', 's', 'small', '9007199254740991'), 9007199254740991);
  });

  it('refuses a string with a lone surrogate instead of storing a replacement', async () => {
    const { base } = await start();
    const answer = await command(base, ['CREATE', 's']);
    assert.equal(answer.status, 200);
    const lone = await command(base, ['SET', 's', 'a', '\ud800']);
    assert.equal(lone.status, 400);
  });
});

describe('HTTP door: errors', () => {
  it('answers each error code with its status and code word', async () => {
    const { base, engine } = await start({ engine: { limits: { maxValueBytes: 8 } } });
    await result(base, 'CREATE', 's');
    await result(base, 'SET', 's', 'word', 'abc');
    await result(base, 'LOCK', 's');
    engine.hooks.pre('create', () => false);
    const cases: Array<[string[], number, string]> = [
      [['NOSUCHCOMMAND'], 400, 'ERR'],
      [['GET', 's'], 400, 'ERR'],
      [['CTL', 's', 'WHAT'], 400, 'ERR'],
      [['GET', 'missing', 'a'], 404, 'NOSESSION'],
      [['INC', 's', 'word'], 400, 'NOTINT'],
      [['TIMEOUT', 's', '1.5'], 400, 'NOTINT'],
      [['LOCK', 's'], 423, 'LOCKED'],
      [['SET', 's', 'a', '123456789'], 413, 'LIMIT'],
      [['GET', 'bad id', 'a'], 400, 'BADID'],
      [['CALL', 'nothing'], 404, 'NOPLUGIN'],
      [['PLUGIN', 's', '1'], 404, 'NOPLUGIN'],
      [['CREATE', 'vetoed'], 403, 'DENIED'],
    ];
    for (const [args, status, code] of cases) {
      const answer = await command(base, args);
      assert.equal(answer.status, status, args.join(' '));
      assert.equal(answer.body.error?.code, code, args.join(' '));
      assert.equal(typeof answer.body.error?.message, 'string');
    }
  });

  it('asks for credentials: NOAUTH without, WRONGPASS when wrong, admin commands for admin', async () => {
    const { base, stats } = await start({ auth: { password: 'pw', adminPassword: 'root' } });
    const none = await command(base, ['PING']);
    assert.equal(none.status, 401);
    assert.equal(none.body.error?.code, 'NOAUTH');
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
    const wrong = await command(base, ['PING'], { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error?.code, 'WRONGPASS');
    // Counted, so that guessing shows in INFO and the metrics; missing credentials are not.
    assert.equal(stats.authFailures, 1);
    const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString('base64')}`;
    assert.equal((await command(base, ['PING'], { authorization: 'Bearer pw' })).status, 200);
    assert.equal((await command(base, ['PING'], { authorization: basic(':pw') })).status, 200);
    assert.equal(
      (await command(base, ['PING'], { authorization: basic('default:pw') })).status,
      200,
    );
    assert.equal((await command(base, ['PING'], { authorization: basic('admin:pw') })).status, 401);
    const denied = await command(base, ['EMPTY'], { authorization: 'Bearer pw' });
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error?.code, 'DENIED');
    const admin = await command(base, ['EMPTY'], { authorization: basic('admin:root') });
    assert.deepEqual(admin.body, { result: 0 });
  });

  it('guards every route but /healthz, unknown ones included', async () => {
    const { base } = await start({ auth: { password: 'pw' } });
    assert.deepEqual((await request(`${base}/healthz`)).body, { ok: true });
    for (const path of ['/v1/commands', '/v1/events?channels=events:created', '/nope']) {
      const answer = await request(`${base}${path}`);
      assert.equal(answer.status, 401, path);
      assert.equal(answer.body.error?.code, 'NOAUTH', path);
    }
  });

  it('answers an unknown route 404 and a wrong method 405 with Allow, both with code ERR', async () => {
    const { base } = await start();
    const missing = await request(`${base}/v2/anything`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error?.code, 'ERR');
    const wrong = await request(`${base}/v1/command`);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.body.error?.code, 'ERR');
    assert.equal(wrong.headers.get('allow'), 'POST');
  });

  it('answers 400 ERR to malformed JSON, bytes that are not UTF-8 and bodies of the wrong shape', async () => {
    const { base } = await start();
    const post = (body: string | Uint8Array) =>
      request(`${base}/v1/command`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    for (const body of [
      '["PING"',
      '',
      '{"args": []}',
      '[]',
      '[1, 2]',
      '["SET", "s", 1, 2]',
      '["SET", "s", null, "v"]',
      '[{"base64": "UElORw=="}]',
      new Uint8Array([0x5b, 0x22, 0xff, 0x22, 0x5d]),
    ]) {
      const answer = await post(body);
      assert.equal(answer.status, 400, String(body));
      assert.equal(answer.body.error?.code, 'ERR', String(body));
    }
  });

  it('answers 413 LIMIT to a body over maxBodyBytes, declared or streamed, and reads no further', async () => {
    const { base } = await start({ http: { maxBodyBytes: 1024 } });
    const big = JSON.stringify(['SET', 's', 'a', 'x'.repeat(2000)]);
    const declared = await command(base, JSON.parse(big));
    assert.equal(declared.status, 413);
    assert.equal(declared.body.error?.code, 'LIMIT');
    assert.equal(declared.headers.get('connection'), 'close');
    const chunks = [big.slice(0, 1000), big.slice(1000)];
    const streamed = await request(`${base}/v1/command`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        pull(controller) {
          const chunk = chunks.shift();
          if (chunk === undefined) controller.close();
          else controller.enqueue(new TextEncoder().encode(chunk));
        },
      }),
      duplex: 'half',
    });
    assert.equal(streamed.status, 413);
    assert.equal(streamed.body.error?.code, 'LIMIT');
    assert.equal((await command(base, ['PING'])).status, 200);
  });

  it('answers 500 ERR "internal error" to an unexpected failure and reports it', async () => {
    const { base, errors } = await start({
      info: () => Promise.reject(new Error('disk on fire')),
    });
    const answer = await command(base, ['INFO']);
    assert.equal(answer.status, 500);
    assert.deepEqual(answer.body, { error: { code: 'ERR', message: 'internal error' } });
    assert.equal((errors[0] as Error).message, 'disk on fire');
  });

  it('refuses a request a browser sent from another origin', async () => {
    const { base } = await start();
    const forged = await command(base, ['EMPTY'], { origin: 'http://evil.example' });
    assert.equal(forged.status, 403);
    assert.equal(forged.body.error?.code, 'DENIED');
    const same = await command(base, ['PING'], { origin: base });
    assert.equal(same.status, 200);
  });

  it('answers only to IP literals, localhost and the allowed host names (DNS rebinding)', async () => {
    const { port } = await start({ http: { allowedHosts: ['Sessions.Example.'] } });
    /** Status and error code of PING sent with `host` as the Host header. */
    const ping = async (host: string) => {
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, path: '/v1/command/PING', method: 'POST', headers: { host } },
          resolve,
        );
        req.on('error', reject);
        req.end();
      });
      let text = '';
      for await (const chunk of response) text += String(chunk);
      return `${response.statusCode} ${(JSON.parse(text) as Answer['body']).error?.code ?? 'ok'}`;
    };
    for (const host of [`127.0.0.1:${port}`, `[::1]:${port}`, `localhost:${port}`, 'LOCALHOST']) {
      assert.equal(await ping(host), '200 ok', host);
    }
    assert.equal(await ping(`sessions.example:${port}`), '200 ok');
    assert.equal(await ping('sessions.example.'), '200 ok');
    // A page on attacker.example re-pointed at 127.0.0.1 names its own host: refused.
    for (const host of [
      `attacker.example:${port}`,
      'localhost.attacker.example',
      '127.0.0.1.nip.io',
    ]) {
      assert.equal(await ping(host), '403 DENIED', host);
    }
  });

  it('answers a request that is not HTTP with 400 and counts a protocol error', async () => {
    const { port, stats, base } = await start();
    const socket = await rawSocket(port);
    socket.end('NOT HTTP AT ALL\r\n\r\n');
    const chunks: Buffer[] = [];
    for await (const chunk of socket) chunks.push(chunk as Buffer);
    assert.match(Buffer.concat(chunks).toString(), /^HTTP\/1\.1 400 /);
    assert.equal(stats.protocolErrors, 1);
    assert.equal((await command(base, ['PING'])).status, 200);
  });
});

describe('HTTP door: events', () => {
  it('streams an events:created message as SSE after a CREATE, and unsubscribes on disconnect', async () => {
    const { base, pubsub } = await start();
    const abort = new AbortController();
    const stream = await fetch(`${base}/v1/events?channels=events:created,events:expired`, {
      signal: abort.signal,
    });
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = stream.body!.getReader();
    await readUntil(reader, (text) => text.includes(': subscribed'));
    await result(base, 'CREATE', 'sid-1');
    const text = await readUntil(reader, (t) => t.includes('data: sid-1\n\n'));
    assert.match(text, /event: events:created\ndata: sid-1\n\n/);
    abort.abort();
    // The server notices the closed socket on a later turn of its loop, not at a set time.
    for (let i = 0; i < 1000 && pubsub.publish('events:created', 'x') > 0; i++) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(pubsub.publish('events:created', 'x'), 0);
  });

  it('streams by pattern, one data line per line of the message', async () => {
    const { base, pubsub } = await start();
    const abort = new AbortController();
    const stream = await fetch(`${base}/v1/events?pattern=events:*`, { signal: abort.signal });
    const reader = stream.body!.getReader();
    await readUntil(reader, (text) => text.includes(': subscribed'));
    pubsub.publish('events:gc', '3\nevent: forged');
    const text = await readUntil(reader, (t) => t.endsWith('\n\n') && t.includes('events:gc'));
    assert.match(text, /event: events:gc\ndata: 3\ndata: event: forged\n\n$/);
    abort.abort();
  });

  it('asks for at least one channel or pattern', async () => {
    const { base } = await start();
    const answer = await request(`${base}/v1/events`);
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error?.code, 'ERR');
  });

  it('cuts off a consumer that does not read once 1 MiB is waiting for it', async () => {
    const { port, pubsub, stats } = await start();
    const socket = await rawSocket(port);
    socket.write('GET /v1/events?channels=events:created HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await once(socket, 'data');
    socket.pause();
    const closed = once(socket, 'close');
    const message = 'x'.repeat(64 * 1024);
    let published = 0;
    // A few messages a turn, so the server's socket gets to hand them to the kernel in between.
    while (pubsub.publish('events:created', message) > 0) {
      if (++published % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    // Reading again lets the client see the end the server sent once it gave up.
    socket.resume();
    await closed;
    assert.ok(published > 16, `cut off after ${published} messages`);
    assert.equal(stats.outputBufferDisconnects, 1);
  });
});

describe('HTTP door: connections', () => {
  it('answers GET /healthz with {"ok": true}', async () => {
    const { base } = await start();
    const answer = await request(`${base}/healthz`);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, { ok: true });
  });

  it('closes connections past maxConnections unanswered and counts them', async () => {
    const { port, stats } = await start({ http: { maxConnections: 1 } });
    const first = await rawSocket(port);
    first.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await once(first, 'data');
    const second = await rawSocket(port);
    const received: Buffer[] = [];
    second.on('data', (chunk: Buffer) => received.push(chunk));
    second.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await once(second, 'close');
    assert.equal(received.length, 0);
    assert.equal(stats.rejectedConnections, 1);
    assert.equal(stats.connections, 1);
  });

  it('close() lets a request in flight finish, then stops', async () => {
    const { base, engine, server } = await start();
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    let release!: (value: string) => void;
    engine.plugins.register('slow', () => {
      entered();
      return new Promise<string>((resolve) => (release = resolve));
    });
    const pending = command(base, ['CALL', 'slow']);
    await inside;
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await assert.rejects(fetch(`${base}/healthz`));
    assert.equal(closed, false);
    release('done');
    const answer = await pending;
    assert.deepEqual(answer.body, { result: 'done' });
    assert.equal(answer.headers.get('connection'), 'close');
    await closing;
    assert.equal(closed, true);
  });

  it('speaks HTTPS when given a key and certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sessiond-http-tls-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1'],
        ...['-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
    const cert = readFileSync(join(dir, 'cert.pem'));
    const key = readFileSync(join(dir, 'key.pem'));
    const { port } = await start({ http: { tls: { key, cert } } });
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpsRequest(
        { host: '127.0.0.1', port, path: '/v1/command', method: 'POST', ca: cert, agent: false },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.setHeader('content-type', 'application/json');
      req.end(JSON.stringify(['PING', 'chiffré ✓']));
    });
    assert.deepEqual(JSON.parse(body), { result: 'chiffré ✓' });
  });

  it('close() ends the event streams and unsubscribes them', async () => {
    const { base, pubsub, server } = await start();
    const stream = await fetch(`${base}/v1/events?pattern=events:*`);
    const reader = stream.body!.getReader();
    await readUntil(reader, (text) => text.includes(': subscribed'));
    await server.close();
    assert.equal(pubsub.publish('events:created', 'x'), 0);
    assert.equal((await reader.read()).done, true);
  });
});
