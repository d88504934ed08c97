import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MemoryStore } from '../../store/memory/memory-store.ts';
import { Engine } from '../../core/engine.ts';
import { SessiondServer, type ServerOptions } from '../server.ts';
import { encodeCommand, RawClient, startTestServer } from '../test-support.ts';

const servers: SessiondServer[] = [];
const clients: RawClient[] = [];
after(async () => {
  for (const client of clients) client.close();
  await Promise.all(servers.map((server) => server.close()));
});

async function start(options: Partial<ServerOptions> = {}) {
  const server = await startTestServer({ http: { port: 0 }, ...options });
  servers.push(server);
  const client = await RawClient.connect(server.respAddress.port);
  clients.push(client);
  return { server, client, base: `http://127.0.0.1:${server.httpAddress!.port}` };
}

async function scrape(base: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(`${base}/metrics`, { headers });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** The value of one sample line, `name{labels} value`; undefined when absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('GET /metrics', () => {
  it('counts created sessions: the total moves after CREATE, and so does the gauge', async () => {
    const { client, base } = await start();
    const before = await scrape(base);
    assert.equal(sample(before, 'sessiond_sessions_created_total'), 0);
    assert.equal(await client.call('CREATE', 'metrics-session-1'), 1);
    const later = await scrape(base);
    assert.equal(sample(later, 'sessiond_sessions_created_total'), 1);
    assert.equal(sample(later, 'sessiond_sessions'), 1);
    await client.call('DESTROY', 'metrics-session-1');
    assert.equal(sample(await scrape(base), 'sessiond_sessions_destroyed_total'), 1);
  });

  it("records each command's latency under its name, however the client spells it", async () => {
    const { client, base } = await start();
    await client.call('CREATE', 'latency-1');
    await client.call('get', 'latency-1', 'cart');
    await client.call('Get', 'latency-1', 'cart');
    await fetch(`${base}/v1/command`, { method: 'POST', body: '["GET","latency-1","cart"]' });
    const text = await scrape(base);
    const name = 'sessiond_command_duration_seconds';
    assert.equal(sample(text, `${name}_count`, '{command="GET"}'), 3);
    assert.equal(sample(text, `${name}_bucket`, '{command="GET",le="+Inf"}'), 3);
    assert.ok(sample(text, `${name}_sum`, '{command="GET"}')! > 0);
    assert.equal(sample(text, `${name}_count`, '{command="CREATE"}'), 1);
    assert.match(text, /# TYPE sessiond_command_duration_seconds histogram/);
  });

  it('times every command of a pipeline, in groups that share one clock read', async () => {
    const { client, base } = await start();
    await client.call('CREATE', 'pipelined-1');
    // 40 GETs and an INC in one write: more than one timing group, the last one partial.
    const frames = [
      ...Array.from({ length: 40 }, () => ['GET', 'pipelined-1', 'n']),
      ['INC', 'pipelined-1', 'n'],
    ];
    client.socket.write(Buffer.concat(frames.map((args) => encodeCommand(args))));
    for (let i = 0; i < 40; i++) assert.equal(await client.reply(), null);
    assert.equal(await client.reply(), 1);
    const text = await scrape(base);
    const name = 'sessiond_command_duration_seconds';
    assert.equal(sample(text, `${name}_count`, '{command="GET"}'), 40);
    assert.equal(sample(text, `${name}_bucket`, '{command="GET",le="+Inf"}'), 40);
    assert.ok(sample(text, `${name}_sum`, '{command="GET"}')! > 0);
    assert.equal(sample(text, `${name}_count`, '{command="INC"}'), 1);
  });

  it('puts every unknown command name under one label', async () => {
    const { client, base } = await start();
    for (const name of ['NOPE', 'nope2', 'x'.repeat(100)]) {
      const reply = (await client.call(name)) as { error: string };
      assert.match(reply.error, /^ERR unknown command/);
    }
    const text = await scrape(base);
    assert.equal(sample(text, 'sessiond_command_duration_seconds_count', '{command="unknown"}'), 3);
    assert.doesNotMatch(text, /command="NOPE"/);
  });

  it('counts a malformed RESP frame as a protocol error', async () => {
    const { server, base } = await start();
    assert.equal(sample(await scrape(base), 'sessiond_protocol_errors_total'), 0);
    const bad = await RawClient.connect(server.respAddress.port);
    clients.push(bad);
    bad.socket.write('*1\r\n$abc\r\n');
    await bad.closedByServer();
    assert.equal(sample(await scrape(base), 'sessiond_protocol_errors_total'), 1);
  });

  it('counts LOCK requests that wait, and those that end LOCKED', async () => {
    const { client, base } = await start();
    await client.call('CREATE', 'locked-1');
    await client.call('LOCK', 'locked-1');
    assert.deepEqual(await client.call('LOCK', 'locked-1', 'wait', '20'), {
      error: 'LOCKED session is locked by another holder',
    });
    const text = await scrape(base);
    assert.equal(sample(text, 'sessiond_lock_waits_total'), 1);
    assert.equal(sample(text, 'sessiond_lock_timeouts_total'), 1);
  });

  it('counts connections, both ports', async () => {
    const { base } = await start();
    const text = await scrape(base);
    // This test's RESP client and the scrape itself.
    assert.equal(sample(text, 'sessiond_connections'), 2);
    assert.ok(sample(text, 'sessiond_connections_total')! >= 2);
  });

  it('counts commands that fail unexpectedly as store errors', async () => {
    // A store whose reads fail as a broken disk would: not a SessiondError.
    class FailingStore extends MemoryStore {
      override async getVar(): Promise<never> {
        throw new Error('disk I/O error');
      }
    }
    const engine = new Engine({ store: new FailingStore() });
    const errors: unknown[] = [];
    const server = await SessiondServer.start({
      engine,
      resp: { port: 0 },
      http: { port: 0 },
      sweepIntervalMs: 0,
      onError: (error) => errors.push(error),
    });
    servers.push(server);
    const client = await RawClient.connect(server.respAddress.port);
    clients.push(client);
    await client.call('CREATE', 'doomed-1');
    assert.deepEqual(await client.call('GET', 'doomed-1', 'cart'), { error: 'ERR internal error' });
    const text = await scrape(`http://127.0.0.1:${server.httpAddress!.port}`);
    assert.equal(sample(text, 'sessiond_store_errors_total'), 1);
    assert.equal(errors.length, 1);
  });

  it('keeps two servers in one process apart: each has its own registry', async () => {
    const one = await start();
    const two = await start();
    await one.client.call('CREATE', 'only-on-one');
    assert.equal(sample(await scrape(one.base), 'sessiond_sessions_created_total'), 1);
    assert.equal(sample(await scrape(two.base), 'sessiond_sessions_created_total'), 0);
  });

  it('says the version and the store kind', async () => {
    const { base } = await start();
    assert.match(await scrape(base), /^sessiond_build_info\{version="[^"]+",store="memory"\} 1$/m);
  });

  it('needs the password when the server has one, as Bearer or Basic', async () => {
    const { base } = await start({ auth: { password: 'scrape-secret' } });
    assert.equal((await fetch(`${base}/metrics`)).status, 401);
    const wrong = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    await scrape(base, { authorization: 'Bearer scrape-secret' });
    const basic = Buffer.from('default:scrape-secret').toString('base64');
    await scrape(base, { authorization: `Basic ${basic}` });
  });

  it('counts each refused password in sessiond_auth_failures_total, on both ports', async () => {
    const { client, base } = await start({ auth: { password: 'metric-secret' } });
    const right = { authorization: 'Bearer metric-secret' };
    const failures = async () => sample(await scrape(base, right), 'sessiond_auth_failures_total');
    assert.equal(await failures(), 0);
    const refused = (await client.call('AUTH', 'guess')) as { error: string };
    assert.match(refused.error, /^WRONGPASS/);
    assert.equal(await failures(), 1);
    const wrong = await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer guess' } });
    assert.equal(wrong.status, 401);
    assert.equal(await failures(), 2);
    assert.deepEqual(await client.call('AUTH', 'metric-secret'), { simple: 'OK' });
    assert.equal(await failures(), 2, 'a right password and the scrapes add nothing');
  });

  it('is not served when metrics are off, and commands go untimed', async () => {
    const { server, base } = await start({ metrics: false });
    assert.equal(server.metrics, null);
    assert.equal((await fetch(`${base}/metrics`)).status, 404);
  });
});
