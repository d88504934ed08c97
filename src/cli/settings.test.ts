import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveSettings, serveHelp } from './settings.ts';

function configFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sessiond-config-')), 'config.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}

describe('serve settings', () => {
  it('default to the embedded SQLite store on 127.0.0.1:8086 and 8087', () => {
    const s = resolveSettings([], {});
    assert.equal(s.store, 'sqlite:sessiond.db');
    assert.equal(s.host, '127.0.0.1');
    assert.equal(s.port, 8086);
    assert.equal(s.httpPort, 8087);
    assert.equal(s.password, undefined);
    assert.deepEqual(s.plugin, []);
  });

  it('take flags over environment variables over the config file over defaults', () => {
    const config = configFile({ port: 1111, httpPort: 2222, host: '127.0.0.2', maxVars: 7 });
    const env = { SESSIOND_CONFIG: config, SESSIOND_PORT: '3333', SESSIOND_HTTP_PORT: '4444' };
    const s = resolveSettings(['--port', '5555'], env);
    assert.equal(s.port, 5555);
    assert.equal(s.httpPort, 4444);
    assert.equal(s.host, '127.0.0.2');
    assert.equal(s.maxVars, 7);
    assert.equal(s.maxClients, 10_000);
  });

  it('set maxResultIds from --max-result-ids or SESSIOND_MAX_RESULT_IDS, 100000 by default', () => {
    assert.equal(resolveSettings([], {}).maxResultIds, 100_000);
    assert.equal(resolveSettings([], { SESSIOND_MAX_RESULT_IDS: '500' }).maxResultIds, 500);
    assert.equal(resolveSettings(['--max-result-ids', '7'], {}).maxResultIds, 7);
    assert.match(serveHelp(), /--max-result-ids N[\s\S]*SESSIOND_MAX_RESULT_IDS/);
  });

  it('repeat list flags and split commas', () => {
    const s = resolveSettings(
      ['--plugin', 'a.js', '--plugin', 'b.js', '--indexed-vars', 'user,cart'],
      {},
    );
    assert.deepEqual(s.plugin, ['a.js', 'b.js']);
    assert.deepEqual(s.indexedVars, ['user', 'cart']);
  });

  it('refuse unknown flags, unknown config keys and non-integers with a message naming them', () => {
    assert.throws(() => resolveSettings(['--prot', '1'], {}), /--prot/);
    assert.throws(() => resolveSettings([], { SESSIOND_PORT: '80a' }), /--port/);
    assert.throws(() => resolveSettings(['--config', configFile({ porrt: 1 })], {}), /porrt/);
    assert.throws(() => resolveSettings(['--config', configFile([1])], {}), /JSON object/);
  });

  it('--help lists every flag with its environment variable', () => {
    const help = serveHelp();
    for (const text of [
      '--store',
      '--port',
      'SESSIOND_PORT',
      '--password',
      '--plugin',
      '--max-clients',
    ]) {
      assert.ok(help.includes(text), text);
    }
  });
});
