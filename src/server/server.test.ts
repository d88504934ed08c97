import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RawClient, startTestServer } from './test-support.ts';

describe('SessiondServer', () => {
  it('serves one engine on both ports: written over RESP, read over HTTP', async () => {
    const server = await startTestServer({ http: { port: 0 } });
    try {
      const client = await RawClient.connect(server.respAddress.port);
      assert.equal(await client.call('CREATE', 's1'), 1);
      assert.equal(await client.call('SET', 's1', 'greeting', Buffer.from('héllo ✓')), 1);
      const response = await fetch(`http://127.0.0.1:${server.httpAddress!.port}/v1/command`, {
        method: 'POST',
        body: JSON.stringify(['GET', 's1', 'greeting']),
      });
      assert.deepEqual(await response.json(), { result: 'héllo ✓' });
      client.close();
    } finally {
      await server.close();
    }
  });

  it('close() is idempotent and closes the store once', async () => {
    const server = await startTestServer();
    await Promise.all([server.close(), server.close()]);
    await assert.rejects(server.engine.count());
  });
});
