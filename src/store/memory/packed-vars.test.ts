import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  countVars,
  EMPTY_VARS,
  fromMap,
  getVar,
  incPacked,
  incPackedSum,
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

  it('incPacked agrees with BigInt addition, or declines and changes nothing', () => {
    const counter = fc.oneof(
      fc.bigInt({ min: -(10n ** 15n), max: 10n ** 15n }).map(String),
      fc.constantFrom('0', '-0', '007', '1e3', ' 1', '999999999999999', '-999999999999999', 'x'),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
    );
    const step = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom(1e15, -1e15, 2 ** 60));
    let taken = 0;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('a', 'n', ':', '1', ''), counter), { maxLength: 5 }),
        fc.constantFrom('n', 'a', '1', ''),
        counter,
        step,
        (entries, name, value, by) => {
          const vars = fromMap(new Map(entries).set(name, value));
          if (typeof vars !== 'string') return;
          const next = incPacked(vars, name, by);
          if (next === undefined) return;
          taken++;
          const before = BigInt(getVar(vars, name)!);
          const sum = before + BigInt(by);
          assert.equal(String(before), getVar(vars, name), 'only canonical counters are taken');
          assert.equal(BigInt(incPackedSum), sum);
          const model = toMap(vars).set(name, String(sum));
          assert.deepEqual(toMap(next), model);
          assert.equal(typeof next, 'string');
        },
      ),
      { numRuns: 500 },
    );
    assert.ok(taken > 50, `the fast path was taken ${taken} times`);
  });

  it('incPacked declines what the general path must decide', () => {
    const vars = fromMap(
      new Map([
        ['n', '41'],
        ['big', '9'.repeat(16)],
        ['s', 'x'],
      ]),
    ) as string;
    assert.equal(incPacked(vars, 'n', 1), vars.replace('2:41', '2:42'));
    assert.equal(incPackedSum, 42);
    assert.equal(incPacked(vars, 'absent', 1), undefined);
    assert.equal(incPacked(vars, 'big', 1), undefined);
    assert.equal(incPacked(vars, 's', 1), undefined);
    assert.equal(incPacked(vars, 'n', 1e15), undefined);
    // A set at the packed byte limit that the longer counter would push past it.
    const full = fromMap(
      new Map([
        ['n', '9'],
        ['pad', 'p'.repeat(PACKED_MAX_BYTES - 5)],
      ]),
    ) as string;
    assert.equal(typeof full, 'string');
    assert.equal(incPacked(full, 'n', 1), undefined);
  });
});
