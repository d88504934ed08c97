import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  countVars,
  EMPTY_VARS,
  fromMap,
  getVar,
  PACKED_MAX_BYTES,
  PACKED_MAX_ENTRIES,
  toMap,
  updateVars,
  withVar,
} from './packed-vars.ts';

describe('packed vars', () => {
  const cases: Array<[string, Array<[string, string]>]> = [
    ['empty', []],
    [
      'simple',
      [
        ['user', 'bob'],
        ['n', '1'],
      ],
    ],
    [
      'separators and digits in names and values',
      [
        ['1:', '2:3'],
        ['', ''],
        ['10', ':::'],
      ],
    ],
    [
      'binary',
      [
        ['\0', '\xff\r\n'],
        ['\x80', '\0\0'],
      ],
    ],
  ];
  for (const [name, entries] of cases) {
    it(`round-trips ${name} through the packed form`, () => {
      const packed = fromMap(new Map(entries));
      assert.equal(typeof packed, 'string');
      assert.deepEqual(toMap(packed), new Map(entries));
      assert.equal(countVars(packed), entries.length);
      for (const [n, v] of entries) assert.equal(getVar(packed, n), v);
      assert.equal(getVar(packed, 'absent'), undefined);
    });
  }

  it('switches to a Map past PACKED_MAX_ENTRIES or PACKED_MAX_BYTES, and back when it shrinks', () => {
    const many = new Map(
      Array.from({ length: PACKED_MAX_ENTRIES + 1 }, (_, i) => [`k${i}`, 'v'] as [string, string]),
    );
    assert.ok(fromMap(many) instanceof Map);
    const big = fromMap(new Map([['k', 'v'.repeat(PACKED_MAX_BYTES)]]));
    assert.ok(big instanceof Map);
    const shrunk = updateVars(big, (map) => map.set('k', 'small'));
    assert.equal(typeof shrunk, 'string');
    assert.equal(getVar(shrunk, 'k'), 'small');
  });

  it('withVar matches a Map model over any sequence of sets, packed or not', () => {
    const text = fc.string({ unit: 'binary', maxLength: 40 });
    const big = fc.string({ unit: 'grapheme-ascii', minLength: 100, maxLength: 300 });
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.constantFrom('a', 'b', ':', '1', '', 'c'.repeat(9)), fc.oneof(text, big)),
          {
            maxLength: 30,
          },
        ),
        fc.array(fc.tuple(fc.string({ maxLength: 3 }), text), { maxLength: 20 }),
        (sets, more) => {
          const model = new Map<string, string>();
          let vars = EMPTY_VARS;
          for (const [name, value] of [...sets, ...more]) {
            vars = withVar(vars, name, value);
            model.set(name, value);
            assert.deepEqual(toMap(vars), model);
            // The form is the one fromMap would choose: packed exactly when within the limits.
            assert.equal(typeof vars, typeof fromMap(new Map(model)));
          }
        },
      ),
    );
  });
});
