import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { addInt64, parseInt64 } from './types.ts';

/** The rule as PROTOCOL.md states it: canonical decimal, signed 64-bit. */
function reference(text: string): bigint | null {
  if (!/^-?(?:0|[1-9][0-9]*)$/.test(text) || text === '-0') return null;
  const n = BigInt(text);
  return n >= -(2n ** 63n) && n <= 2n ** 63n - 1n ? n : null;
}

describe('parseInt64', () => {
  it('reads canonical integers and refuses everything else, short or long', () => {
    const cases = [
      ['0', 0n],
      ['-1', -1n],
      ['999999999999999', 999999999999999n],
      ['-99999999999999', -99999999999999n],
      ['1000000000000000', 1000000000000000n],
      ['9223372036854775807', 9223372036854775807n],
      ['-9223372036854775808', -9223372036854775808n],
      ['9223372036854775808', null],
      ['-0', null],
      ['00', null],
      ['01', null],
      ['-', null],
      ['', null],
      ['+1', null],
      [' 1', null],
      ['1 ', null],
      ['1e3', null],
      ['0x1', null],
      ['١', null],
    ] as const;
    for (const [text, expected] of cases) assert.equal(parseInt64(text), expected, text);
  });

  it('agrees with the canonical rule on any string of digits, signs and other bytes', () => {
    const text = fc.stringMatching(/^[-+0-9 a]{0,22}$/);
    fc.assert(
      fc.property(text, (s) => parseInt64(s) === reference(s)),
      { numRuns: 20_000 },
    );
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n }), (n) => {
        assert.equal(parseInt64(n.toString()), reference(n.toString()));
      }),
    );
  });

  it('addInt64 adds to a stored counter and refuses a sum outside 64 bits', () => {
    assert.equal(addInt64(undefined, 5n), 5n);
    assert.equal(addInt64('41', 1n), 42n);
    assert.equal(addInt64('9223372036854775807', 1n), 'notint');
    assert.equal(addInt64('x', 1n), 'notint');
  });
});
