import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSessiondError } from '../errors.ts';
import { entropyBits, randomAlphanumeric, validateId } from './ids.ts';

describe('ids', () => {
  it('22 alphanumerics carry at least 128 bits', () => {
    assert.ok(entropyBits(22) >= 128);
    assert.ok(entropyBits(21) < 128);
  });

  it('randomAlphanumeric() uses all 62 characters about evenly, with no modulo bias', () => {
    const counts = new Map<string, number>();
    const sample = randomAlphanumeric(62 * 2000);
    for (const c of sample) counts.set(c, (counts.get(c) ?? 0) + 1);
    assert.equal(counts.size, 62);
    // Each character is expected 2000 times; 6 standard deviations (~270) is far from any fluke.
    for (const [c, n] of counts) assert.ok(Math.abs(n - 2000) < 270, `${c} appeared ${n} times`);
  });

  it('randomAlphanumeric() never repeats an id in 100,000 draws', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 100_000; i++) seen.add(randomAlphanumeric(22));
    assert.equal(seen.size, 100_000);
  });

  it('validateId() accepts every RFC 6265 cookie-octet and refuses the rest', () => {
    for (let code = 0; code < 256; code++) {
      const id = `a${String.fromCharCode(code)}b`;
      const allowed = code >= 0x21 && code <= 0x7e && ![0x22, 0x2c, 0x3b, 0x5c].includes(code);
      if (allowed) validateId(id, 255);
      else
        assert.throws(
          () => validateId(id, 255),
          (e) => isSessiondError(e, 'BADID'),
          `byte ${code}`,
        );
    }
    // Code units past one byte: none is a cookie-octet.
    for (const code of [0x100, 0x2028, 0xd800, 0xfeff, 0xffff]) {
      assert.throws(
        () => validateId(`a${String.fromCharCode(code)}b`, 255),
        (e) => isSessiondError(e, 'BADID'),
        `code unit ${code}`,
      );
    }
  });
});
