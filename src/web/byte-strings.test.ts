import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromBytes, toBytes } from './byte-strings.ts';

describe('byte strings', () => {
  it('Unicode goes to the engine as its UTF-8 bytes, one per code unit', () => {
    assert.equal(toBytes('é✓'), '\u00c3\u00a9\u00e2\u009c\u0093');
    assert.equal(toBytes('plain ascii'), 'plain ascii');
  });

  it('every well-formed string survives the round trip', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) =>
        assert.equal(fromBytes(toBytes(text)), text),
      ),
    );
  });

  it('bytes that are not UTF-8 read back as U+FFFD rather than failing', () => {
    assert.equal(fromBytes('\u00ff'), '\ufffd');
  });
});
