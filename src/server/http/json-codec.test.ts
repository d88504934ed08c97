import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { SessiondError } from '../../errors.ts';
import {
  doubleReply,
  errorReply,
  mapReply,
  NULL_ARRAY,
  pushReply,
  simpleString,
  type Reply,
} from '../../protocol/resp/encoder.ts';
import { argFromJson, messageText, replyToJson, type Json } from './json-codec.ts';

describe('replyToJson', () => {
  const cases: Array<[string, Reply, Json]> = [
    ['an ASCII byte string is itself', 'cart=3', 'cart=3'],
    ['a UTF-8 byte string is its text', Buffer.from('héllo ✓').toString('latin1'), 'héllo ✓'],
    ['bytes that are not UTF-8 are base64', '\xff\xfe', { base64: '//4=' }],
    ['a Buffer is its bytes', Buffer.from([0xc3, 0xa9]), 'é'],
    ['nil is null', null, null],
    ['the null array is null', NULL_ARRAY, null],
    ['a safe integer is a number', -42, -42],
    ['a small bigint is a number', 7n, 7],
    ['a bigint past 2^53 is a decimal string', 2n ** 53n + 1n, '9007199254740993'],
    ['the lowest int64 is a decimal string', -(2n ** 63n), '-9223372036854775808'],
    ['a boolean is a boolean', true, true],
    ['a status reply is its text', simpleString('OK'), 'OK'],
    ['an array is an array', ['a', 1, null], ['a', 1, null]],
    ['a push is an array', pushReply(['message', 'events:gc', '3']), ['message', 'events:gc', '3']],
    [
      'a map is an object',
      mapReply([
        ['a', '1'],
        ['b', '2'],
      ]),
      { a: '1', b: '2' },
    ],
    ['a Map is an object', mapReply(new Map<Reply, Reply>([['k', 1]])), { k: 1 }],
    ['integer map keys are text', mapReply([[1, 'one']]), { '1': 'one' }],
    ['a map with a binary key is pairs', mapReply([['\xff', 'v']]), [[{ base64: '/w==' }, 'v']]],
    ['a finite double is a number', doubleReply(1.5), 1.5],
    ['an infinite double is text', doubleReply(-Infinity), '-inf'],
    ['nan is text', doubleReply(NaN), 'nan'],
    [
      'an error inside a reply is an error object',
      [errorReply('NOSESSION', 'gone'), new SessiondError('LIMIT', 'too big')],
      [
        { error: { code: 'NOSESSION', message: 'gone' } },
        { error: { code: 'LIMIT', message: 'too big' } },
      ],
    ],
  ];
  for (const [name, reply, expected] of cases) {
    it(name, () => assert.deepEqual(replyToJson(reply), expected));
  }

  it('throws on values no reply may hold, as the RESP encoder does', () => {
    assert.throws(() => replyToJson(1.5), TypeError);
    assert.throws(() => replyToJson(2n ** 63n), RangeError);
  });
});

describe('argFromJson', () => {
  it('encodes text as its UTF-8 bytes, one per code unit', () => {
    assert.equal(argFromJson('✓'), '\xe2\x9c\x93');
    assert.equal(argFromJson('plain'), 'plain');
  });

  it('decodes {"base64": ...} to its bytes', () => {
    assert.equal(argFromJson({ base64: '/wA=' }), '\xff\x00');
    assert.equal(argFromJson({ base64: '' }), '');
  });

  it('refuses other values, non-canonical base64 and lone surrogates with ERR', () => {
    for (const value of [
      1,
      null,
      true,
      [],
      {},
      { base64: 'AB' },
      { base64: '/wA=', x: 1 },
      '\udc00',
    ]) {
      assert.throws(
        () => argFromJson(value),
        (e: unknown) => e instanceof SessiondError && e.code === 'ERR',
        JSON.stringify(value),
      );
    }
  });
});

describe('messageText', () => {
  it('decodes quoted client bytes that are UTF-8 and leaves text as it is', () => {
    assert.equal(messageText(`unknown CTL query '${argFromJson('é')}'`), "unknown CTL query 'é'");
    assert.equal(messageText('no such session: abcd…'), 'no such session: abcd…');
    assert.equal(messageText('bad byte \xff'), 'bad byte \xff');
  });
});
