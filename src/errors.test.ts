import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, redactId, SessiondError } from './errors.ts';

describe('errors', () => {
  it("every error code has a row in the README's error table", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const code of ERROR_CODES)
      assert.match(readme, new RegExp(`^\\| \`${code}\` +\\|`, 'm'), code);
  });

  it('the wire form starts with the code word', () => {
    assert.equal(
      new SessiondError('LIMIT', 'value size exceeds 10').toWire(),
      'LIMIT value size exceeds 10',
    );
  });

  it('redactId() never reveals more than four characters of an id', () => {
    assert.equal(redactId('abcdefghijklmnop'), 'abcd…');
    assert.equal(redactId('abc'), '…');
  });
});
