import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../core/engine.ts';
import { SessiondServer, type ServerOptions } from '../server/server.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import {
  ClientError,
  SessiondClient,
  SessiondError,
  type ClientErrorCode,
  type ConnectOptions,
  type ErrorCode,
} from './index.ts';

// ---- helpers: real servers on port 0, a real TCP proxy, real certificates ----

type StartOptions = Omit<ServerOptions, 'engine' | 'resp'> & {
  engine?: Engine;
  resp?: ServerOptions['resp'];
};

function startServer(options: StartOptions = {}): Promise<SessiondServer> {
  const { engine = new Engine({ store: new MemoryStore() }), resp, ...rest } = options;
  // No sweeper: gc() is what removes expired sessions here.
  return SessiondServer.start({
    sweepIntervalMs: 0,
    http: false,
    ...rest,
    engine,
    resp: { port: 0, ...resp },
  });
}

function clientOf(server: SessiondServer, options: ConnectOptions = {}): Promise<SessiondClient> {
  return SessiondClient.connect({ port: server.respAddress.port, ...options });
}

/** Asserts that `call` rejects with a SessiondError or ClientError of `code`. */
async function rejectsWith(
  call: Promise<unknown> | (() => Promise<unknown>),
  kind: typeof SessiondError | typeof ClientError,
  code: ErrorCode | ClientErrorCode,
): Promise<void> {
  await assert.rejects(call, (error: unknown) => {
    assert.ok(error instanceof kind, `expected ${kind.name}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

/** A TCP proxy that records the chunks each way: shows what travels on the wire. */
async function startProxy(targetPort: number) {
  const toServer: Buffer[] = [];
  const toClient: Buffer[] = [];
  const server: Server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    inbound.on('data', (chunk: Buffer) => {
      toServer.push(chunk);
      outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => {
      toClient.push(chunk);
      inbound.write(chunk);
    });
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    inbound.on('error', () => inbound.destroy());
    outbound.on('error', () => outbound.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    toServer,
    toClient,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A port nothing listens on: bound once, then released. */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// ---- every method, over both protocol versions ----

for (const resp3 of [false, true]) {
  describe(`SessiondClient over ${resp3 ? 'RESP3' : 'RESP2'}`, () => {
    let server: SessiondServer;
    let client: SessiondClient;
    let n = 0;
    /** A fresh session id for each test: tests share one server. */
    const newSid = () => `sid-${resp3 ? 3 : 2}-${++n}-${Math.random().toString(36).slice(2)}`;

    before(async () => {
      const engine = new Engine({ store: new MemoryStore() });
      engine.plugins.setEscape((sid, val, param) => `${sid}:${val.toUpperCase()}:${param ?? '-'}`);
      engine.plugins.register('join', (args) => args.join('+'));
      server = await startServer({ engine });
      client = await clientOf(server, { resp3 });
    });

    after(async () => {
      await client.disconnect();
      await server.close();
    });

    it('create() makes a session once and answers false for an id that exists', async () => {
      const sid = newSid();
      assert.equal(await client.create(sid), true);
      assert.equal(await client.create(sid), false);
    });

    it('create() passes class, data and timeout to the server', async () => {
      const sid = newSid();
      const cls = `cls-${sid}`;
      assert.equal(await client.create(sid, { cls, data: 'blob', timeout: 120 }), true);
      assert.equal(await client.getData(sid), 'blob');
      assert.equal(await client.timeout(sid), 120);
      assert.equal(await client.count(cls), 1);
    });

    it('uniq() returns a new id of the asked length that exists on the server', async () => {
      const sid = await client.uniq(40, { data: 'from uniq' });
      assert.match(sid, /^[A-Za-z0-9]{40}$/);
      assert.equal(await client.ctl(sid, 'EXIST'), 1);
      assert.equal(await client.getData(sid), 'from uniq');
    });

    it('randstr() returns alphanumerics of the asked length and creates nothing', async () => {
      const before = await client.count();
      assert.match(await client.randstr(64), /^[A-Za-z0-9]{64}$/);
      assert.equal(await client.count(), before);
    });

    it('destroy() removes a session and answers false for one that is gone', async () => {
      const sid = newSid();
      await client.create(sid);
      assert.equal(await client.destroy(sid), true);
      assert.equal(await client.destroy(sid), false);
      assert.equal(await client.ctl(sid, 'EXIST'), 0);
    });

    it('set() and get() round-trip Unicode text, sent as UTF-8 bytes', async () => {
      const sid = newSid();
      await client.create(sid);
      await client.set(sid, 'naïve', 'héllo ✓');
      assert.equal(await client.get(sid, 'naïve'), 'héllo ✓');
      // The server holds bytes: the UTF-8 encoding, one byte per code unit.
      const stored = await server.engine.get(sid, Buffer.from('naïve').toString('latin1'));
      assert.equal(stored, Buffer.from('héllo ✓').toString('latin1'));
    });

    it('get() answers the default for an unset variable, and null without one', async () => {
      const sid = newSid();
      await client.create(sid);
      assert.equal(await client.get(sid, 'missing', 'fallback'), 'fallback');
      assert.equal(await client.get(sid, 'missing'), null);
      await client.set(sid, 'empty', '');
      assert.equal(await client.get(sid, 'empty', 'fallback'), '');
    });

    it('setArray() takes a record, a Map or pairs; getArray() returns a Map', async () => {
      const sid = newSid();
      await client.create(sid);
      await client.setArray(sid, { a: '1', b: '2' });
      await client.setArray(sid, new Map([['c', '3']]));
      await client.setArray(sid, [
        ['__proto__', 'safe'],
        ['d', 'ünïcode'],
      ]);
      await client.setArray(sid, {});
      const vars = await client.getArray(sid);
      assert.ok(vars instanceof Map);
      assert.deepEqual([...vars].sort(), [
        ['__proto__', 'safe'],
        ['a', '1'],
        ['b', '2'],
        ['c', '3'],
        ['d', 'ünïcode'],
      ]);
    });

    it('unset() removes the named variables and counts those that existed', async () => {
      const sid = newSid();
      await client.create(sid);
      await client.setArray(sid, { a: '1', b: '2', c: '3' });
      assert.equal(await client.unset(sid, 'a', 'b', 'nope'), 2);
      assert.equal(await client.unset(sid), 0);
      assert.deepEqual([...(await client.getArray(sid))], [['c', '3']]);
    });

    it('inc() counts from zero and returns an exact bigint past 2^53', async () => {
      const sid = newSid();
      await client.create(sid);
      assert.equal(await client.inc(sid, 'hits'), 1n);
      assert.equal(await client.inc(sid, 'hits', 41), 42n);
      assert.equal(await client.inc(sid, 'big', 9_007_199_254_740_993n), 9_007_199_254_740_993n);
      assert.equal(await client.inc(sid, 'big', -1n), 9_007_199_254_740_992n);
      assert.equal(await client.get(sid, 'hits'), '42');
    });

    it('setData() creates a missing session and getData() reads the blob back', async () => {
      const sid = newSid();
      await client.setData(sid, 'données ✓');
      assert.equal(await client.getData(sid), 'données ✓');
      await client.setData(sid, '');
      assert.equal(await client.getData(sid), '');
    });

    it('find() and listvar() search one variable across sessions', async () => {
      const [s1, s2, s3] = [newSid(), newSid(), newSid()];
      const name = `color-${s1}`;
      for (const sid of [s1, s2, s3]) await client.create(sid);
      await client.set(s1, name, 'blau');
      await client.set(s2, name, 'rot');
      await client.set(s3, name, 'blau');
      assert.deepEqual((await client.find(name, 'blau')).sort(), [s1, s3].sort());
      assert.deepEqual(await client.find(name, 'grün'), []);
      const byId = await client.listvar(name);
      assert.ok(byId instanceof Map);
      assert.deepEqual(
        [...byId].sort(),
        [
          [s1, 'blau'],
          [s2, 'rot'],
          [s3, 'blau'],
        ].sort(),
      );
    });

    it('list() returns every id or one page; scan() walks all pages with CURSOR', async () => {
      const cls = `paged-${newSid()}`;
      const ids = Array.from({ length: 25 }, () => newSid());
      for (const sid of ids) await client.create(sid, { cls });
      assert.deepEqual((await client.list({ cls })).sort(), [...ids].sort());
      assert.ok((await client.list()).length >= 25);
      const page = await client.list({ cursor: '0', count: 10, cls });
      assert.equal(page.ids.length, 10);
      assert.notEqual(page.cursor, '0');
      const scanned: string[] = [];
      for await (const sid of client.scan({ count: 7, cls })) scanned.push(sid);
      assert.deepEqual(scanned.sort(), [...ids].sort());
    });

    it('count() counts live sessions, of one class when given', async () => {
      const cls = `counted-${newSid()}`;
      const total = await client.count();
      await client.create(newSid(), { cls });
      await client.create(newSid(), { cls });
      assert.equal(await client.count(cls), 2);
      assert.equal(await client.count(), total + 2);
    });

    it('timeout() reads the idle timeout and sets it when given seconds', async () => {
      const sid = newSid();
      await client.create(sid, { timeout: 60 });
      assert.equal(await client.timeout(sid), 60);
      assert.equal(await client.timeout(sid, 0), 0);
      assert.equal(await client.timeout(sid), 0);
    });

    it('lock() hands out increasing keys; unlock() releases only with the right key', async () => {
      const sid = newSid();
      await client.create(sid);
      const first = await client.lock(sid, { leaseMs: 10_000 });
      await rejectsWith(client.lock(sid), SessiondError, 'LOCKED');
      assert.equal(await client.unlock(sid, first + 1000), false);
      assert.equal(await client.unlock(sid, first), true);
      const second = await client.lock(sid, { leaseMs: 10_000, waitMs: 0 });
      assert.ok(second > first);
      assert.equal(await client.unlock(sid, second), true);
    });

    it('lock() waits out its WAIT for the server even past the command timeout', async () => {
      const sid = newSid();
      await client.create(sid);
      const key = await client.lock(sid);
      const impatient = await clientOf(server, { resp3, commandTimeoutMs: 50 });
      try {
        // LOCKED, not TIMEOUT: the client waited the 300 ms it asked the server to wait.
        await rejectsWith(impatient.lock(sid, { waitMs: 300 }), SessiondError, 'LOCKED');
      } finally {
        await impatient.disconnect();
        await client.unlock(sid, key);
      }
    });

    it('plugin() and call() reach the functions loaded in the server', async () => {
      assert.equal(await client.plugin('s1', 'val'), 's1:VAL:-');
      assert.equal(await client.plugin('s1', 'val', 'p'), 's1:VAL:p');
      assert.equal(await client.call('join', 'a', 'b', 'ç'), 'a+b+ç');
      assert.equal(await client.call('join'), '');
    });

    it('ctl() answers EXIST, TTL, AGE, TLA, CTIME, TOUCH and NOW', async () => {
      const sid = newSid();
      await client.create(sid, { timeout: 100 });
      const now = Date.now() / 1000;
      assert.equal(await client.ctl(sid, 'EXIST'), 1);
      const ttl = await client.ctl(sid, 'TTL');
      assert.ok(ttl > 0 && ttl <= 100, `ttl ${ttl}`);
      assert.ok((await client.ctl(sid, 'AGE')) >= 0);
      assert.ok((await client.ctl(sid, 'TLA')) >= 0);
      assert.ok(Math.abs((await client.ctl(sid, 'CTIME')) - now) < 60);
      assert.equal(await client.ctl(sid, 'TOUCH'), 1);
      assert.ok(Math.abs((await client.ctl(sid, 'NOW')) - now) < 60);
      assert.equal(await client.ctl(newSid(), 'TOUCH'), 0);
    });

    it('touch(), expire() and persist() answer whether the session exists', async () => {
      const sid = newSid();
      await client.create(sid, { timeout: 0 });
      assert.equal(await client.ctl(sid, 'TTL'), -1);
      assert.equal(await client.touch(sid), true);
      assert.equal(await client.expire(sid, 50), true);
      const ttl = await client.ctl(sid, 'TTL');
      assert.ok(ttl > 0 && ttl <= 50, `ttl ${ttl}`);
      assert.equal(await client.persist(sid), true);
      assert.equal(await client.ctl(sid, 'TTL'), -1);
      const gone = newSid();
      assert.equal(await client.touch(gone), false);
      assert.equal(await client.expire(gone, 5), false);
      assert.equal(await client.persist(gone), false);
    });

    it('regenerate() moves the session to a new id; with grace the old one stays readable', async () => {
      const sid = newSid();
      await client.create(sid);
      await client.set(sid, 'cart', '3');
      const moved = await client.regenerate(sid);
      assert.notEqual(moved, sid);
      assert.equal(await client.get(moved, 'cart'), '3');
      await rejectsWith(client.get(sid, 'cart'), SessiondError, 'NOSESSION');

      const again = await client.regenerate(moved, { graceSeconds: 30 });
      assert.equal(await client.get(moved, 'cart'), '3');
      await rejectsWith(client.set(moved, 'cart', '4'), SessiondError, 'DENIED');
      assert.equal(await client.get(again, 'cart'), '3');
    });

    it("setUser(), getUser(), userSessions() and destroyUser() follow a user's sessions", async () => {
      const user = `user-${newSid()}`;
      const [phone, laptop, tablet] = [newSid(), newSid(), newSid()];
      for (const sid of [phone, laptop, tablet]) {
        await client.create(sid);
        await client.setUser(sid, user);
      }
      assert.equal(await client.getUser(phone), user);
      assert.deepEqual((await client.userSessions(user)).sort(), [phone, laptop, tablet].sort());
      assert.equal(await client.destroyUser(user, { except: phone }), 2);
      assert.deepEqual(await client.userSessions(user), [phone]);
      await client.setUser(phone, null);
      assert.equal(await client.getUser(phone), null);
      assert.equal(await client.destroyUser(user), 0);
    });

    it('gc() removes sessions whose expiry has passed', async () => {
      const sid = newSid();
      await client.create(sid);
      await client.expire(sid, 0);
      assert.ok((await client.gc()) >= 1);
      assert.equal(await client.ctl(sid, 'EXIST'), 0);
    });

    it('ping() answers PONG or the message, and info() the server text', async () => {
      assert.equal(await client.ping(), 'PONG');
      assert.equal(await client.ping('héllo ✓'), 'héllo ✓');
      const info = await client.info();
      assert.match(info, /^sessiond_version:/m);
      assert.match(info, /^store:memory/m);
    });

    it('subscribe() delivers events:created, a pattern delivers every event, until stopped', async () => {
      const created = deferred<[string, string]>();
      const all: Array<[string, string]> = [];
      const destroyed = deferred();
      const stopCreated = await client.subscribe('events:created', (message, channel) =>
        created.resolve([message, channel]),
      );
      const stopAll = await client.subscribe(['events:*'], (message, channel) => {
        all.push([channel, message]);
        if (channel === 'events:destroyed') destroyed.resolve();
      });
      const sid = newSid();
      await client.create(sid);
      assert.deepEqual(await created.promise, [sid, 'events:created']);
      await client.destroy(sid);
      await destroyed.promise;
      assert.deepEqual(
        all.filter(([, message]) => message === sid),
        [
          ['events:created', sid],
          ['events:destroyed', sid],
        ],
      );
      await stopCreated();
      await stopAll();
      await stopAll();
    });

    const serverErrors: Array<[ErrorCode, string, (sid: string) => Promise<unknown>]> = [
      ['NOSESSION', 'get() of a missing session', (sid) => client.get(sid, 'x')],
      ['NOSESSION', 'getArray() of a missing session', (sid) => client.getArray(sid)],
      [
        'NOTINT',
        'inc() of a variable that is not an integer',
        async (sid) => {
          await client.create(sid);
          await client.set(sid, 'word', 'abc');
          return client.inc(sid, 'word');
        },
      ],
      [
        'LOCKED',
        'lock() of a session someone holds',
        async (sid) => {
          await client.create(sid);
          await client.lock(sid);
          return client.lock(sid);
        },
      ],
      [
        'LIMIT',
        'set() of a value over 64 KiB of UTF-8 (40 000 two-byte characters)',
        async (sid) => {
          await client.create(sid);
          return client.set(sid, 'big', 'é'.repeat(40_000));
        },
      ],
      [
        'LIMIT',
        'list() of a page over maxListCount',
        () => client.list({ cursor: '0', count: 1e6 }),
      ],
      ['BADID', 'create() of an empty id', () => client.create('')],
      ['BADID', 'create() of an id with a space', () => client.create('a b')],
      ['NOPLUGIN', 'call() of a function that is not loaded', () => client.call('nope')],
      ['ERR', 'randstr() of length 0', () => client.randstr(0)],
      ['ERR', 'uniq() shorter than 128 bits', () => client.uniq(8)],
    ];
    for (const [code, what, call] of serverErrors) {
      it(`${what} rejects with SessiondError ${code}`, async () => {
        await rejectsWith(call(newSid()), SessiondError, code);
      });
    }

    it('an error leaves the connection usable: the next call gets its own reply', async () => {
      await rejectsWith(client.get(newSid(), 'x'), SessiondError, 'NOSESSION');
      assert.equal(await client.ping('after'), 'after');
    });
  });
}

// ---- pipelining and the wire ----

describe('SessiondClient on the wire', () => {
  let server: SessiondServer;
  let proxy: Awaited<ReturnType<typeof startProxy>>;

  before(async () => {
    server = await startServer();
    proxy = await startProxy(server.respAddress.port);
  });

  after(async () => {
    await proxy.close();
    await server.close();
  });

  it('1000 calls made in one tick travel pipelined and each resolves to its own reply', async () => {
    const client = await SessiondClient.connect({ port: proxy.port });
    try {
      await client.create('pipelined');
      const chunksBefore = proxy.toServer.length;
      const counts = await Promise.all(
        Array.from({ length: 1000 }, () => client.inc('pipelined', 'n')),
      );
      assert.deepEqual(
        counts,
        Array.from({ length: 1000 }, (_, i) => BigInt(i + 1)),
      );
      // Unpipelined, 1000 round trips would take 1000 writes; pipelined they share a few.
      assert.ok(proxy.toServer.length - chunksBefore < 50, `${proxy.toServer.length} chunks`);

      const echoes = await Promise.all(
        Array.from({ length: 1000 }, (_, i) => client.ping(`m${i}`)),
      );
      assert.deepEqual(
        echoes,
        Array.from({ length: 1000 }, (_, i) => `m${i}`),
      );
    } finally {
      await client.disconnect();
    }
  });

  it('resp3: true speaks RESP3: HELLO 3 is sent and maps arrive as maps', async () => {
    const client = await SessiondClient.connect({ port: proxy.port, resp3: true });
    try {
      const sentBefore = proxy.toServer.length;
      await client.create('resp3');
      await client.setArray('resp3', { a: '1' });
      const repliesBefore = proxy.toClient.length;
      assert.deepEqual([...(await client.getArray('resp3'))], [['a', '1']]);
      const reply = Buffer.concat(proxy.toClient.slice(repliesBefore)).toString('latin1');
      assert.equal(reply, '%1\r\n$1\r\na\r\n$1\r\n1\r\n');
      const hello = Buffer.concat(proxy.toServer.slice(0, sentBefore)).toString('latin1');
      assert.match(hello, /HELLO\r\n\$1\r\n3/);
    } finally {
      await client.disconnect();
    }
  });
});

// ---- authentication and rights ----

describe('SessiondClient against a server with passwords', () => {
  let server: SessiondServer;

  before(async () => {
    server = await startServer({ auth: { password: 'secret', adminPassword: 'admin-secret' } });
  });

  after(() => server.close());

  for (const resp3 of [false, true]) {
    const over = resp3 ? 'RESP3' : 'RESP2';

    it(`connect() without a password fails with NOAUTH (${over})`, async () => {
      await rejectsWith(clientOf(server, { resp3 }), SessiondError, 'NOAUTH');
    });

    it(`connect() with a wrong password fails with WRONGPASS (${over})`, async () => {
      await rejectsWith(clientOf(server, { resp3, password: 'guess' }), SessiondError, 'WRONGPASS');
    });

    it(`the right password connects; empty() needs the admin user (${over})`, async () => {
      const user = await clientOf(server, { resp3, password: 'secret' });
      const admin = await clientOf(server, { resp3, username: 'admin', password: 'admin-secret' });
      try {
        await user.create('mine');
        await rejectsWith(user.empty(), SessiondError, 'DENIED');
        assert.ok((await admin.empty()) >= 1);
        assert.equal(await user.count(), 0);
      } finally {
        await user.disconnect();
        await admin.disconnect();
      }
    });
  }

  it('a non-ASCII password authenticates', async () => {
    const unicode = await startServer({ auth: { password: 'pässwörd ✓' } });
    try {
      const client = await clientOf(unicode, { password: 'pässwörd ✓' });
      assert.equal(await client.ping(), 'PONG');
      await client.disconnect();
    } finally {
      await unicode.close();
    }
  });

  it('plugin() with no escape function loaded rejects with NOPLUGIN', async () => {
    const client = await clientOf(server, { password: 'secret' });
    try {
      await rejectsWith(client.plugin('s', 'v'), SessiondError, 'NOPLUGIN');
    } finally {
      await client.disconnect();
    }
  });

  it('an operation a pre hook vetoes rejects with DENIED', async () => {
    const client = await clientOf(server, { password: 'secret' });
    const removeHook = server.engine.hooks.pre('destroy', () => false);
    try {
      await client.create('kept');
      await rejectsWith(client.destroy('kept'), SessiondError, 'DENIED');
      assert.equal(await client.ctl('kept', 'EXIST'), 1);
    } finally {
      removeHook();
      await client.disconnect();
    }
  });
});

// ---- connections: failures, timeouts, reconnects, TLS ----

describe('SessiondClient connections', () => {
  it('connect() to a port where nothing listens fails with CONNECTION', async () => {
    const port = await freePort();
    await rejectsWith(SessiondClient.connect({ port }), ClientError, 'CONNECTION');
  });

  for (const resp3 of [false, true]) {
    it(`connect() to a server that never answers fails with CONNECTION (${resp3 ? 'RESP3' : 'RESP2'})`, async () => {
      const accepted: Socket[] = [];
      const silent = createServer((socket) => accepted.push(socket));
      silent.listen(0, '127.0.0.1');
      await once(silent, 'listening');
      const { port } = silent.address() as AddressInfo;
      try {
        await rejectsWith(
          SessiondClient.connect({ port, resp3, commandTimeoutMs: 50 }),
          ClientError,
          'CONNECTION',
        );
      } finally {
        for (const socket of accepted) socket.destroy();
        await new Promise((resolve) => silent.close(resolve));
      }
    });
  }

  it('a call with no reply within commandTimeoutMs fails with TIMEOUT; the next call gets its own reply', async () => {
    const engine = new Engine({ store: new MemoryStore() });
    const stalled = deferred<string>();
    engine.plugins.register('stall', () => stalled.promise);
    const server = await startServer({ engine });
    const client = await clientOf(server, { commandTimeoutMs: 50 });
    try {
      await rejectsWith(client.call('stall'), ClientError, 'TIMEOUT');
      // The late reply to CALL arrives first and is dropped; PING's own reply follows it.
      stalled.resolve('late');
      assert.equal(await client.ping('next'), 'next');
    } finally {
      await client.disconnect();
      await server.close();
    }
  });

  it('the client reconnects when the server restarts on the same port', async () => {
    let server = await startServer();
    const { port } = server.respAddress;
    const lost = deferred<Error>();
    const client = await clientOf(server, {
      reconnect: { maxDelayMs: 20 },
      onError: (error) => lost.resolve(error),
    });
    try {
      await client.create('before-restart');
      await server.close();
      const loss = await lost.promise;
      assert.ok(loss instanceof ClientError && loss.code === 'CONNECTION', String(loss));
      // Made while the server is down, the call waits for the reconnect.
      const pending = client.ping('while down');
      server = await startServer({ resp: { port } });
      assert.equal(await pending, 'while down');
      assert.equal(await client.create('after-restart'), true);
      assert.equal(await client.ctl('before-restart', 'EXIST'), 0);
    } finally {
      await client.disconnect();
      await server.close();
    }
  });

  it('with reconnect off, calls after a lost connection fail with CONNECTION', async () => {
    const server = await startServer();
    const lost = deferred();
    const client = await clientOf(server, { reconnect: false, onError: () => lost.resolve() });
    try {
      await server.close();
      await lost.promise;
      await rejectsWith(client.ping(), ClientError, 'CONNECTION');
    } finally {
      await client.disconnect();
    }
  });

  it('calls after disconnect() fail with CLOSED', async () => {
    const server = await startServer();
    const client = await clientOf(server);
    await client.disconnect();
    await client.disconnect();
    await rejectsWith(client.ping(), ClientError, 'CLOSED');
    await rejectsWith(
      client.subscribe('events:created', () => {}),
      ClientError,
      'CLOSED',
    );
    await server.close();
  });

  describe('over TLS', () => {
    let dir: string;
    let server: SessiondServer;
    let cert: Buffer;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'sessiond-client-tls-'));
      const subject = ['-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'];
      const keyType = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      const files = ['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')];
      execFileSync('openssl', ['req', '-x509', '-days', '1', ...keyType, ...files, ...subject], {
        stdio: 'ignore',
      });
      cert = readFileSync(join(dir, 'cert.pem'));
      const key = readFileSync(join(dir, 'key.pem'));
      server = await startServer({
        resp: { port: 0, tls: { key, cert } },
        auth: { password: 'pw' },
      });
    });

    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a client trusting the certificate connects and round-trips values', async () => {
      const client = await clientOf(server, { tls: { ca: cert }, password: 'pw' });
      try {
        await client.create('over-tls');
        await client.set('over-tls', 'v', 'chiffré ✓');
        assert.equal(await client.get('over-tls', 'v'), 'chiffré ✓');
        const events = deferred<string>();
        const stop = await client.subscribe('events:destroyed', (sid) => events.resolve(sid));
        await client.destroy('over-tls');
        assert.equal(await events.promise, 'over-tls');
        await stop();
      } finally {
        await client.disconnect();
      }
    });

    it('tls: true refuses a certificate no CA vouches for, with CONNECTION', async () => {
      await rejectsWith(clientOf(server, { tls: true, password: 'pw' }), ClientError, 'CONNECTION');
    });
  });
});
