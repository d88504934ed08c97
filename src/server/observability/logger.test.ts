import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Engine } from '../../core/engine.ts';
import { MemoryStore } from '../../store/memory/memory-store.ts';
import { SessiondServer } from '../server.ts';
import { RawClient, startTestServer } from '../test-support.ts';
import { createLogger, type LogLevel } from './logger.ts';

/** A logger whose JSON lines land in `lines`, parsed. */
function capture(level: LogLevel = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  let raw = '';
  const logger = createLogger({
    level,
    destination: {
      write(chunk: string) {
        raw += chunk;
        lines.push(JSON.parse(chunk) as Record<string, unknown>);
      },
    },
  });
  return { logger, lines, raw: () => raw };
}

const SID = 'k3FqZ8xW2mNpR7tY9vB4cD6eG1hJ5lQ0';

describe('createLogger', () => {
  it('writes one JSON object a line, with the level as a word, the time and the message', () => {
    const { logger, lines } = capture();
    logger.info({ port: 8086 }, 'listening');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 'info');
    assert.equal(lines[0]!.msg, 'listening');
    assert.equal(lines[0]!.port, 8086);
    assert.equal(lines[0]!.name, 'sessiond');
    assert.ok(!Number.isNaN(Date.parse(lines[0]!.time as string)));
  });

  it('shortens a session id logged as sid, nested or in a list, and never writes it whole', () => {
    const { logger, lines, raw } = capture();
    logger.warn({ sid: SID, request: { sid: SID }, sids: [SID, SID] }, 'suspicious');
    assert.equal(lines[0]!.sid, 'k3Fq…');
    assert.deepEqual(lines[0]!.request, { sid: 'k3Fq…' });
    assert.deepEqual(lines[0]!.sids, ['k3Fq…', 'k3Fq…']);
    assert.ok(!raw().includes(SID.slice(0, 8)));
  });

  it('writes the chosen level and those above it, nothing below', () => {
    const { logger, lines } = capture('warn');
    logger.info('not written');
    logger.debug('not written');
    logger.warn('written');
    logger.error('written');
    assert.deepEqual(
      lines.map((line) => line.level),
      ['warn', 'error'],
    );
  });

  it('refuses a level it does not know', () => {
    assert.throws(() => createLogger({ level: 'loud' as LogLevel }), /log level/);
  });
});

describe("the server's logs", () => {
  it('record session events at debug, with the session id shortened', async () => {
    const { logger, lines, raw } = capture('debug');
    const server = await startTestServer({ logger });
    const client = await RawClient.connect(server.respAddress.port);
    try {
      assert.equal(await client.call('CREATE', SID), 1);
      assert.equal(await client.call('DESTROY', SID), 1);
      const events = lines.filter((line) => line.msg === 'session event');
      assert.deepEqual(
        events.map((line) => [line.event, line.sid]),
        [
          ['created', 'k3Fq…'],
          ['destroyed', 'k3Fq…'],
        ],
      );
      assert.ok(!raw().includes(SID));
    } finally {
      client.close();
      await server.close();
    }
  });

  it('follow a level changed while the server runs, and let go of the logger at close', async () => {
    const { logger, lines } = capture('info');
    const server = await startTestServer({ logger });
    const client = await RawClient.connect(server.respAddress.port);
    try {
      assert.equal(await client.call('CREATE', SID), 1);
      logger.level = 'debug';
      assert.equal(await client.call('DESTROY', SID), 1);
      const events = lines.filter((line) => line.msg === 'session event');
      assert.deepEqual(
        events.map((line) => line.event),
        ['destroyed'],
      );
    } finally {
      client.close();
      await server.close();
    }
    assert.equal(logger.listenerCount('level-change'), 0);
  });

  it('record an unexpected failure at error, with its stack, when no onError is given', async () => {
    class FailingStore extends MemoryStore {
      override async getVar(): Promise<never> {
        throw new Error('disk I/O error');
      }
    }
    const { logger, lines } = capture();
    const server = await SessiondServer.start({
      engine: new Engine({ store: new FailingStore() }),
      resp: { port: 0 },
      http: false,
      sweepIntervalMs: 0,
      logger,
    });
    const client = await RawClient.connect(server.respAddress.port);
    try {
      await client.call('CREATE', SID);
      assert.deepEqual(await client.call('GET', SID, 'cart'), { error: 'ERR internal error' });
      const [line] = lines.filter((l) => l.level === 'error');
      assert.equal((line!.err as { message: string }).message, 'disk I/O error');
      assert.match((line!.err as { stack: string }).stack, /FailingStore/);
    } finally {
      client.close();
      await server.close();
    }
  });

  it('log each refused password once at warn, with the peer address and never the password', async () => {
    const { logger, lines, raw } = capture();
    const server = await startTestServer({
      logger,
      http: { port: 0 },
      auth: { password: 'right-password' },
    });
    const client = await RawClient.connect(server.respAddress.port);
    try {
      const refused = (await client.call('AUTH', 'guessed-password')) as { error: string };
      assert.match(refused.error, /^WRONGPASS/);
      const response = await fetch(`http://127.0.0.1:${server.httpAddress!.port}/v1/commands`, {
        headers: { authorization: 'Bearer guessed-password' },
      });
      assert.equal(response.status, 401);
      // A request without credentials and a right password are not refusals.
      await fetch(`http://127.0.0.1:${server.httpAddress!.port}/v1/commands`);
      assert.deepEqual(await client.call('AUTH', 'right-password'), { simple: 'OK' });
      const refusals = lines.filter((line) => line.msg === 'password refused');
      assert.deepEqual(
        refusals.map((line) => [line.level, line.protocol]),
        [
          ['warn', 'resp'],
          ['warn', 'http'],
        ],
      );
      for (const line of refusals) assert.match(String(line.peer), /^(::ffff:)?127\.0\.0\.1$/);
      assert.ok(!raw().includes('guessed-password'));
      assert.ok(!raw().includes('right-password'));
    } finally {
      client.close();
      await server.close();
    }
  });
});
