import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  countVars,
  fromMap,
  getVar,
  PACKED_MAX_BYTES,
  PACKED_MAX_ENTRIES,
  toMap,
  updateVars,
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
});
