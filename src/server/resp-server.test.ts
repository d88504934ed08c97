import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SqliteStore } from '../store/sqlite/index.ts';
import { loadPlugin } from './plugin-loader.ts';
import type { SessiondServer } from './server.ts';
import { RawClient, startTestServer, type Decoded } from './test-support.ts';

const servers: SessiondServer[] = [];
const clients: RawClient[] = [];
after(async () => {
  for (const client of clients) client.close();
  for (const server of servers) await server.close();
});

async function setup(
  options: Parameters<typeof startTestServer>[0] = {},
  engine: Parameters<typeof startTestServer>[1] = {},
) {
  const server = await startTestServer(options, engine);
  servers.push(server);
  const client = await RawClient.connect(server.respAddress.port);
  clients.push(client);
  return {
    server,
    client,
    connect: async () => {
      const another = await RawClient.connect(server.respAddress.port);
      clients.push(another);
      return another;
    },
  };
}

const code = (reply: Decoded): string =>
  typeof reply === 'object' && reply !== null && 'error' in reply
    ? reply.error.split(' ')[0]!
    : 'none';

describe('RESP server: every command', () => {
  it('answers each msession verb with the reply shape of PROTOCOL.md', async () => {
    const { client } = await setup();
    const steps: Array<[string[], Decoded]> = [
      [['PING'], { simple: 'PONG' }],
      [['ping', 'hi'], 'hi'],
      [['CREATE', 's1', 'CLASS', 'shop', 'DATA', 'blob', 'TIMEOUT', '100'], 1],
      [['CREATE', 's1'], 0],
      [['SET', 's1', 'a', '1', 'b', '2'], 1],
      [['GET', 's1', 'a'], '1'],
      [['GET', 's1', 'zz'], null],
      [['GET', 's1', 'zz', 'dflt'], 'dflt'],
      [
        ['GETALL', 's1'],
        ['a', '1', 'b', '2'],
      ],
      [['INC', 's1', 'n'], 1],
      [['INC', 's1', 'n', '-5'], -4],
      [['UNSET', 's1', 'n', 'nope'], 1],
      [['SETDATA', 's1', 'blob2'], 1],
      [['GETDATA', 's1'], 'blob2'],
      [['SETDATA', 'fresh', 'made'], 1],
      [['SET', 's1', 'user', 'alice'], 1],
      [['FIND', 'user', 'alice'], ['s1']],
      [
        ['LISTVAR', 'user'],
        ['s1', 'alice'],
      ],
      [['COUNT'], 2],
      [['COUNT', 'CLASS', 'shop'], 1],
      [['LIST', 'CLASS', 'shop'], ['s1']],
      [['TIMEOUT', 's1'], 100],
      [['TIMEOUT', 's1', '200'], 200],
      [['CTL', 's1', 'exist'], 1],
      [['CTL', 's1', 'TTL'], 200],
      [['TOUCH', 's1'], 1],
      [['TOUCH', 'nope'], 0],
      [['EXPIRE', 's1', '50'], 1],
      [['CTL', 's1', 'TTL'], 50],
      [['PERSIST', 's1'], 1],
      [['SETUSER', 's1', 'alice'], 1],
      [['GETUSER', 's1'], 'alice'],
      [['GETUSER', 'fresh'], null],
      [['USERSESSIONS', 'alice'], ['s1']],
      [['LOCK', 's1'], 1],
      [['UNLOCK', 's1', '2'], 0],
      [['UNLOCK', 's1', '1'], 1],
      [['LOCK', 's1', 'LEASE', '1000', 'WAIT', '0'], 2],
      [['DESTROY', 'fresh'], 1],
      [['DESTROY', 'fresh'], 0],
      [['GC'], 0],
    ];
    for (const [command, expected] of steps)
      assert.deepEqual(await client.call(...command), expected, command.join(' '));
  });

  it('makes ids and random strings, lists with a cursor, regenerates, and empties', async () => {
    const { client } = await setup();
    const id = await client.call('UNIQ', '22', 'CLASS', 'c');
    assert.match(id as string, /^[A-Za-z0-9]{22}$/);
    assert.match((await client.call('RANDSTR', '40')) as string, /^[A-Za-z0-9]{40}$/);
    for (let i = 0; i < 5; i++) await client.call('CREATE', `p${i}`);
    const ids: string[] = [];
    let cursor = '0';
    do {
      const [next, page] = (await client.call('LIST', 'CURSOR', cursor, 'COUNT', '2')) as [
        string,
        string[],
      ];
      assert.ok(page.length <= 2);
      ids.push(...page);
      cursor = next;
    } while (cursor !== '0');
    assert.equal(ids.length, 6);
    await client.call('SET', 'p0', 'k', 'v');
    const fresh = (await client.call('REGENERATE', 'p0', 'GRACE', '5')) as string;
    assert.equal(await client.call('GET', fresh, 'k'), 'v');
    assert.equal(await client.call('GET', 'p0', 'k'), 'v');
    assert.equal(code(await client.call('SET', 'p0', 'k', 'w')), 'DENIED');
    await client.call('SETUSER', 'p1', 'bob');
    await client.call('SETUSER', 'p2', 'bob');
    assert.equal(await client.call('DESTROYUSER', 'bob', 'EXCEPT', 'p2'), 1);
    assert.equal(await client.call('EMPTY'), 6);
    assert.equal(await client.call('COUNT'), 0);
  });

  it('INFO reports version, store, sessions and connections', async () => {
    const { client } = await setup();
    const info = (await client.call('INFO')) as string;
    for (const key of [
      'sessiond_version:',
      'uptime_in_seconds:',
      'store:memory',
      'sessions:0',
      'connected_clients:1',
      'total_commands_processed:',
    ]) {
      assert.ok(info.includes(key), key);
    }
  });

  it('answers every error code of PROTOCOL.md with its code word', async () => {
    const { client, server } = await setup(
      { auth: { password: 'pw', adminPassword: 'root' } },
      { limits: { maxValueBytes: 4 } },
    );
    assert.equal(code(await client.call('GET', 's', 'a')), 'NOAUTH');
    assert.equal(code(await client.call('AUTH', 'nope')), 'WRONGPASS');
    // Counted, so that guessing shows in INFO and the metrics (a right password is not).
    assert.equal(server.stats.authFailures, 1);
    assert.deepEqual(await client.call('AUTH', 'pw'), { simple: 'OK' });
    assert.equal(server.stats.authFailures, 1);
    assert.match((await client.call('INFO')) as string, /\r\nauth_failures:1\r\n/);
    await client.call('CREATE', 's');
    await client.call('SET', 's', 'word', 'abc');
    server.engine.hooks.pre('destroy', () => false);
    const cases: Array<[string[], string]> = [
      [['NOSUCHCOMMAND'], 'ERR'],
      [['GET', 's'], 'ERR'],
      [['SET', 's', 'a', '1', 'b'], 'ERR'],
      [['CREATE', 's', 'COLOR', 'red'], 'ERR'],
      [['CTL', 's', 'WHAT'], 'ERR'],
      [['UNIQ', '21'], 'ERR'],
      [['GET', 'missing', 'a'], 'NOSESSION'],
      [['INC', 's', 'word'], 'NOTINT'],
      [['INC', 's', 'n', 'x'], 'NOTINT'],
      [['TIMEOUT', 's', '1.5'], 'NOTINT'],
      [['SET', 's', 'a', '12345'], 'LIMIT'],
      [['GET', 'bad id', 'a'], 'BADID'],
      [['GET', 'x'.repeat(256), 'a'], 'BADID'],
      [['CALL', 'nothing'], 'NOPLUGIN'],
      [['PLUGIN', 's', '1'], 'NOPLUGIN'],
      [['EMPTY'], 'DENIED'],
      [['DESTROY', 's'], 'DENIED'],
    ];
    for (const [command, expected] of cases)
      assert.equal(code(await client.call(...command)), expected, command.join(' '));
    assert.equal(await client.call('LOCK', 's'), 1);
    assert.equal(code(await client.call('LOCK', 's')), 'LOCKED');
    assert.deepEqual(await client.call('AUTH', 'admin', 'root'), { simple: 'OK' });
    assert.equal(await client.call('EMPTY'), 1);
  });

  it('takes command names byte for byte: no Unicode casing turns ß into SS', async () => {
    const { client } = await setup();
    assert.equal(code(await client.call('USERSE\xdfIONS', 'alice')), 'ERR');
    assert.deepEqual(await client.call('usersessions', 'alice'), []);
  });

  it('never echoes a whole session id in an error reply', async () => {
    // Defends against ids leaking into client logs and error trackers that record replies.
    const { client } = await setup();
    const sid = 'Zq8mW3xK7pN2rT5vY9bC4dF6gH1jL0sA';
    for (const command of [
      ['GET', sid, 'a'],
      ['SET', sid, 'a', '1'],
      ['INC', sid, 'n'],
    ]) {
      const reply = (await client.call(...command)) as { error: string };
      assert.match(reply.error, /^NOSESSION /);
      assert.ok(!reply.error.includes(sid), reply.error);
    }
  });

  it('runs plugin functions the operator loaded, and a throwing plugin errors only its caller', async () => {
    const { client, server } = await setup();
    const dir = mkdtempSync(join(tmpdir(), 'sessiond-plugin-'));
    const path = join(dir, 'plugin.mjs');
    writeFileSync(
      path,
      `export default ({ register, setEscape }) => {
      register('upper', (args) => args.join(' ').toUpperCase());
      register('boom', () => { throw new Error('kaput'); });
      setEscape((sid, val, param) => sid + ':' + val + ':' + (param ?? ''));
    };`,
    );
    await loadPlugin(path, server.engine);
    assert.equal(await client.call('CALL', 'upper', 'a', 'b'), 'A B');
    assert.equal(await client.call('PLUGIN', 's1', '3', 'test'), 's1:3:test');
    const boom = await client.call('CALL', 'boom');
    assert.equal(code(boom), 'ERR');
    assert.match(JSON.stringify(boom), /kaput/);
    assert.deepEqual(await client.call('PING'), { simple: 'PONG' });
  });
});

describe('RESP server: protocol', () => {
  it('accepts inline commands as telnet and redis-cli send them', async () => {
    const { client } = await setup();
    client.socket.write('PING\r\nCREATE s1\r\nSET s1 "a b" "x\\ty"\nGET s1 \'a b\'\r\n');
    assert.deepEqual(await client.reply(), { simple: 'PONG' });
    assert.equal(await client.reply(), 1);
    assert.equal(await client.reply(), 1);
    assert.equal(await client.reply(), 'x\ty');
  });

  it('answers a pipeline in order with one socket write for the batch', async () => {
    const { client, server } = await setup();
    await client.call('CREATE', 's1');
    const before = server.stats.socketWrites;
    const batch: Buffer[] = [];
    for (let i = 0; i < 100; i++)
      batch.push(Buffer.from(`*3\r\n$3\r\nINC\r\n$2\r\ns1\r\n$1\r\nn\r\n`));
    client.socket.write(Buffer.concat(batch));
    for (let i = 1; i <= 100; i++) assert.equal(await client.reply(), i);
    assert.equal(server.stats.socketWrites - before, 1);
  });

  for (const store of ['memory', 'sqlite'] as const) {
    it(`answers every command of a client that half-closes, then closes (${store} store)`, async () => {
      // SQLite answers after a promise: the end of input arrives while a reply is pending.
      const engine =
        store === 'sqlite'
          ? {
              store: await SqliteStore.open({
                path: join(mkdtempSync(join(tmpdir(), 'hc-')), 'db'),
              }),
            }
          : {};
      const { server } = await setup({}, engine);
      for (let round = 0; round < 20; round++) {
        const socket = connect(server.respAddress.port, '127.0.0.1');
        await once(socket, 'connect');
        let replies = '';
        socket.on('data', (chunk: Buffer) => (replies += chunk.toString('latin1')));
        socket.end(`PING\r\nCREATE h${round}\r\nSET h${round} x 1\r\nGET h${round} x\r\n`);
        await once(socket, 'close');
        assert.equal(replies, '+PONG\r\n:1\r\n:1\r\n$1\r\n1\r\n', `round ${round}`);
      }
    });
  }

  it('keeps values binary-safe: NUL, CR LF and high bytes round-trip', async () => {
    const { client } = await setup();
    await client.call('CREATE', 's1');
    const value = Buffer.from([0, 13, 10, 255, 128, 36, 42]);
    await client.call('SET', 's1', 'bin', value);
    assert.equal(await client.call('GET', 's1', 'bin'), value.toString('latin1'));
  });

  it('speaks RESP3 after HELLO 3: maps for GETALL and LISTVAR, null for nil', async () => {
    const { client } = await setup();
    const hello = (await client.call('HELLO', '3')) as { map: Array<[Decoded, Decoded]> };
    assert.deepEqual(
      hello.map.find(([k]) => k === 'proto'),
      ['proto', 3],
    );
    await client.call('CREATE', 's1');
    await client.call('SET', 's1', 'user', 'u1');
    assert.deepEqual(await client.call('GETALL', 's1'), { map: [['user', 'u1']] });
    assert.deepEqual(await client.call('LISTVAR', 'user'), { map: [['s1', 'u1']] });
    assert.equal(await client.call('GET', 's1', 'none'), null);
    assert.equal(code(await client.call('HELLO', '4')), 'ERR');
  });

  it('HELLO with AUTH authenticates and switches protocol at once', async () => {
    const { client } = await setup({ auth: { password: 'pw' } });
    assert.equal(code(await client.call('HELLO', '3')), 'NOAUTH');
    assert.equal(code(await client.call('HELLO', '3', 'AUTH', 'default', 'bad')), 'WRONGPASS');
    const hello = await client.call('HELLO', '3', 'AUTH', 'default', 'pw');
    assert.ok(typeof hello === 'object' && hello !== null && 'map' in hello);
  });

  it('QUIT answers OK and closes the connection', async () => {
    const { client } = await setup();
    assert.deepEqual(await client.call('QUIT'), { simple: 'OK' });
    await client.closedByServer();
  });
});

describe('RESP server: pub/sub', () => {
  it('SUBSCRIBE and PSUBSCRIBE receive every session event with Redis message shapes', async () => {
    const { client, connect } = await setup();
    assert.deepEqual(await client.call('SUBSCRIBE', 'events:created', 'events:destroyed'), [
      'subscribe',
      'events:created',
      1,
    ]);
    assert.deepEqual(await client.reply(), ['subscribe', 'events:destroyed', 2]);
    const other = await connect();
    assert.deepEqual(await other.call('PSUBSCRIBE', 'events:*'), ['psubscribe', 'events:*', 1]);
    const writer = await connect();
    await writer.call('CREATE', 's1');
    await writer.call('SET', 's1', 'a', '1');
    await writer.call('DESTROY', 's1');
    await writer.call('GC');
    assert.deepEqual(await client.reply(), ['message', 'events:created', 's1']);
    assert.deepEqual(await client.reply(), ['message', 'events:destroyed', 's1']);
    assert.deepEqual(await other.reply(), ['pmessage', 'events:*', 'events:created', 's1']);
    assert.deepEqual(await other.reply(), ['pmessage', 'events:*', 'events:updated', 's1']);
    assert.deepEqual(await other.reply(), ['pmessage', 'events:*', 'events:destroyed', 's1']);
    assert.deepEqual(await other.reply(), ['pmessage', 'events:*', 'events:gc', '0']);
  });

  it('a RESP2 subscriber may only (un)subscribe, ping and quit', async () => {
    const { client } = await setup();
    await client.call('SUBSCRIBE', 'events:expired');
    assert.equal(code(await client.call('GET', 's', 'a')), 'ERR');
    assert.deepEqual(await client.call('PING'), ['pong', '']);
    assert.deepEqual(await client.call('UNSUBSCRIBE'), ['unsubscribe', 'events:expired', 0]);
    assert.deepEqual(await client.call('PING'), { simple: 'PONG' });
  });

  it('a RESP3 subscriber gets push messages and may still run commands', async () => {
    const { client, connect } = await setup();
    await client.call('HELLO', '3');
    assert.deepEqual(await client.call('SUBSCRIBE', 'events:created'), {
      push: ['subscribe', 'events:created', 1],
    });
    assert.equal(await client.call('COUNT'), 0);
    await (await connect()).call('CREATE', 's9');
    assert.deepEqual(await client.reply(), { push: ['message', 'events:created', 's9'] });
  });
});

describe('RESP server: bad input never stops other clients', () => {
  const garbage: Array<[string, Buffer]> = [
    ['a negative bulk length', Buffer.from('*2\r\n$3\r\nGET\r\n$-5\r\n')],
    ['a huge bulk length', Buffer.from('*2\r\n$3\r\nGET\r\n$99999999999\r\n')],
    ['a negative count', Buffer.from('*-7\r\n')],
    ['a huge count', Buffer.from('*99999999999\r\n')],
    ['a bulk without its $', Buffer.from('*1\r\n+PING\r\n')],
    ['a bulk whose length lies', Buffer.from('*1\r\n$2\r\nPING\r\n')],
    ['unbalanced inline quotes', Buffer.from('SET "a b\r\n')],
    ['binary garbage', Buffer.from([0x2a, 0xff, 0x00, 0x13, 0x37, 0x0d, 0x0a, 0xde, 0xad])],
  ];
  for (const [what, bytes] of garbage) {
    it(`${what} gets a protocol error and a closed connection; others carry on`, async () => {
      const { client, connect } = await setup();
      const bystander = await connect();
      client.socket.write(bytes);
      const reply = await client.reply();
      assert.match(String((reply as { error: string }).error), /^ERR Protocol error/);
      await client.closedByServer();
      assert.deepEqual(await bystander.call('PING'), { simple: 'PONG' });
    });
  }

  it('half a frame waits for the rest, and the server answers others meanwhile', async () => {
    const { client, connect } = await setup();
    const bystander = await connect();
    client.socket.write('*2\r\n$4\r\nPING\r\n$5\r\nhel');
    assert.deepEqual(await bystander.call('PING'), { simple: 'PONG' });
    client.socket.write('lo\r\n');
    assert.equal(await client.reply(), 'hello');
  });

  it('a client sending one byte at a time is served while others are', async () => {
    const { client, connect } = await setup();
    const bystander = await connect();
    const bytes = Buffer.from('*2\r\n$4\r\nPING\r\n$4\r\nslow\r\n');
    for (const byte of bytes) {
      client.socket.write(Buffer.from([byte]));
      assert.deepEqual(await bystander.call('PING'), { simple: 'PONG' });
    }
    assert.equal(await client.reply(), 'slow');
  });

  it('before AUTH, a large request is refused and the connection closed', async () => {
    const { client } = await setup({ auth: { password: 'pw' } });
    client.send('AUTH', 'x'.repeat(20_000));
    assert.match(String(((await client.reply()) as { error: string }).error), /Protocol error/);
    await client.closedByServer();
  });

  it('a client that never reads its replies is cut off at maxOutputBuffer; others carry on', async () => {
    const { client, connect, server } = await setup({
      resp: { port: 0, maxOutputBuffer: 256 * 1024 },
    });
    await client.call('CREATE', 'big');
    await client.call('SET', 'big', 'v', 'x'.repeat(60_000));
    client.socket.pause();
    const bystander = await connect();
    // 400 replies of 60 KB (24 MB) in one batch: more than the kernel's buffers plus the limit.
    const get = Buffer.from('*3\r\n$3\r\nGET\r\n$3\r\nbig\r\n$1\r\nv\r\n');
    client.socket.write(Buffer.concat(Array.from({ length: 400 }, () => get)));
    for (let i = 0; i < 500 && server.stats.outputBufferDisconnects === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(server.stats.outputBufferDisconnects, 1);
    client.socket.resume(); // a paused socket never sees its end
    await client.closedByServer(10_000).catch(() => assert.fail('connection still open'));
    assert.deepEqual(await bystander.call('PING'), { simple: 'PONG' });
  });

  it('LIST, FIND, LISTVAR and USERSESSIONS past maxResultIds answer LIMIT; LIST CURSOR pages through all', async () => {
    const { client, connect } = await setup({}, { limits: { maxResultIds: 5 } });
    const add = async (id: string) => {
      await client.call('CREATE', id);
      await client.call('SET', id, 'user', 'alice');
      await client.call('SETUSER', id, 'alice');
    };
    for (let i = 0; i < 5; i++) await add(`s${i}`);
    assert.equal(((await client.call('LIST')) as string[]).length, 5);
    assert.equal(((await client.call('FIND', 'user', 'alice')) as string[]).length, 5);
    assert.equal(((await client.call('LISTVAR', 'user')) as string[]).length, 10);
    assert.equal(((await client.call('USERSESSIONS', 'alice')) as string[]).length, 5);
    await add('s5');
    const refused = (await client.call('LIST')) as { error: string };
    assert.match(refused.error, /^LIMIT .*maxResultIds.*LIST CURSOR/);
    for (const command of [
      ['FIND', 'user', 'alice'],
      ['LISTVAR', 'user'],
      ['USERSESSIONS', 'alice'],
    ]) {
      const reply = (await client.call(...command)) as { error: string };
      assert.match(reply.error, /^LIMIT .*maxResultIds/, command[0]);
    }
    assert.deepEqual(await (await connect()).call('PING'), { simple: 'PONG' });
    const ids: string[] = [];
    let cursor = '0';
    do {
      const [next, page] = (await client.call('LIST', 'CURSOR', cursor, 'COUNT', '4')) as [
        string,
        string[],
      ];
      ids.push(...page);
      cursor = next;
    } while (cursor !== '0');
    assert.deepEqual(ids.sort(), ['s0', 's1', 's2', 's3', 's4', 's5']);
    assert.equal(await client.call('DESTROYUSER', 'alice', 'EXCEPT', 's0'), 5);
  });

  it('connections past maxClients are told so and closed', async () => {
    const { connect } = await setup({ resp: { port: 0, maxClients: 2 } });
    const second = await connect();
    assert.deepEqual(await second.call('PING'), { simple: 'PONG' });
    const third = await connect();
    assert.equal(code(await third.reply()), 'ERR');
    await third.closedByServer();
  });
});

describe('RESP server: lifecycle and real clients', () => {
  it('close() lets a command in flight finish and answer before the connection ends', async () => {
    const server = await startTestServer();
    const client = await RawClient.connect(server.respAddress.port);
    await client.call('CREATE', 's1');
    const key = await client.call('LOCK', 's1');
    const other = await RawClient.connect(server.respAddress.port);
    other.send('LOCK', 's1', 'WAIT', '300');
    await new Promise((resolve) => setTimeout(resolve, 20));
    const closing = server.close();
    assert.equal(code(await other.reply()), 'LOCKED');
    await closing;
    await other.closedByServer();
    assert.equal(key, 1);
    client.close();
  });

  it('redis-cli runs commands against the server', async () => {
    const { server } = await setup();
    // Asynchronous: the server answers from this same process, so a blocking call would deadlock.
    const run = promisify(execFile);
    const cli = async (...args: string[]) =>
      (await run('redis-cli', ['-p', String(server.respAddress.port), ...args])).stdout.trim();
    assert.equal(await cli('PING'), 'PONG');
    assert.equal(await cli('CREATE', 'cli1'), '1');
    assert.equal(await cli('SET', 'cli1', 'greeting', 'hello world'), '1');
    assert.equal(await cli('GET', 'cli1', 'greeting'), 'hello world');
    assert.equal(await cli('INC', 'cli1', 'n', '41'), '41');
    assert.equal(await cli('INC', 'cli1', 'n'), '42');
    assert.match(await cli('GET', 'nope', 'x'), /NOSESSION/);
    // Under RESP3 (-3) redis-cli prints a map as one "key value" line per entry.
    assert.equal(await cli('-3', 'GETALL', 'cli1'), 'greeting hello world\nn 42');
    assert.equal(await cli('GETALL', 'cli1'), 'greeting\nhello world\nn\n42');
  });
});
