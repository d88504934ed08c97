import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import { SessiondError, noSession } from '../../errors.ts';
import { RequestDecoder } from './decoder.ts';
import {
  NULL_ARRAY,
  ReplyWriter,
  doubleReply,
  encodeReply,
  errorReply,
  mapReply,
  pushReply,
  simpleString,
  type Reply,
} from './encoder.ts';
import { ProtocolError } from './protocol-error.ts';

interface Case {
  /** A sentence about the behaviour. */
  name: string;
  reply: Reply;
  /** The expected bytes, written as latin1 strings. */
  resp2: string;
  resp3: string;
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const BIG = Buffer.alloc(5000, 'big\r\n', 'latin1');

const cases: Case[] = [
  {
    name: 'a byte string is a bulk string',
    reply: 'cart',
    resp2: '$4\r\ncart\r\n',
    resp3: '$4\r\ncart\r\n',
  },
  {
    name: 'the empty string is an empty bulk string',
    reply: '',
    resp2: '$0\r\n\r\n',
    resp3: '$0\r\n\r\n',
  },
  {
    name: 'every byte value goes out as itself, CR and LF included',
    reply: ALL_BYTES.toString('latin1'),
    resp2: `$256\r\n${ALL_BYTES.toString('latin1')}\r\n`,
    resp3: `$256\r\n${ALL_BYTES.toString('latin1')}\r\n`,
  },
  {
    name: 'a code unit above 0xff becomes one byte, so the length still matches',
    reply: 'a\u0141b',
    resp2: '$3\r\na\x41b\r\n',
    resp3: '$3\r\na\x41b\r\n',
  },
  {
    name: 'a small Buffer is a bulk string of its bytes',
    reply: ALL_BYTES,
    resp2: `$256\r\n${ALL_BYTES.toString('latin1')}\r\n`,
    resp3: `$256\r\n${ALL_BYTES.toString('latin1')}\r\n`,
  },
  {
    name: 'a large Buffer is a bulk string of its bytes',
    reply: ['before', BIG, 'after'],
    resp2: `*3\r\n$6\r\nbefore\r\n$5000\r\n${BIG.toString('latin1')}\r\n$5\r\nafter\r\n`,
    resp3: `*3\r\n$6\r\nbefore\r\n$5000\r\n${BIG.toString('latin1')}\r\n$5\r\nafter\r\n`,
  },
  {
    name: 'null is the null bulk string, _ under RESP3',
    reply: null,
    resp2: '$-1\r\n',
    resp3: '_\r\n',
  },
  { name: 'a number is an integer', reply: 42, resp2: ':42\r\n', resp3: ':42\r\n' },
  { name: 'a negative number is an integer', reply: -7, resp2: ':-7\r\n', resp3: ':-7\r\n' },
  {
    name: 'the largest safe integer is an integer',
    reply: Number.MAX_SAFE_INTEGER,
    resp2: ':9007199254740991\r\n',
    resp3: ':9007199254740991\r\n',
  },
  {
    name: 'a bigint at either end of 64 bits is an integer',
    reply: [2n ** 63n - 1n, -(2n ** 63n)],
    resp2: '*2\r\n:9223372036854775807\r\n:-9223372036854775808\r\n',
    resp3: '*2\r\n:9223372036854775807\r\n:-9223372036854775808\r\n',
  },
  { name: 'true is :1, #t under RESP3', reply: true, resp2: ':1\r\n', resp3: '#t\r\n' },
  { name: 'false is :0, #f under RESP3', reply: false, resp2: ':0\r\n', resp3: '#f\r\n' },
  {
    name: 'arrays nest, with nulls inside',
    reply: ['0', ['a', null, 3]],
    resp2: '*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n$-1\r\n:3\r\n',
    resp3: '*2\r\n$1\r\n0\r\n*3\r\n$1\r\na\r\n_\r\n:3\r\n',
  },
  { name: 'an empty array is *0', reply: [], resp2: '*0\r\n', resp3: '*0\r\n' },
  {
    name: 'the null array is *-1, _ under RESP3',
    reply: NULL_ARRAY,
    resp2: '*-1\r\n',
    resp3: '_\r\n',
  },
  {
    name: 'a simple string is a status line',
    reply: simpleString('OK'),
    resp2: '+OK\r\n',
    resp3: '+OK\r\n',
  },
  {
    name: 'CR and LF in a status line become spaces',
    reply: simpleString('a\r\n+OK\nb'),
    resp2: '+a  +OK b\r\n',
    resp3: '+a  +OK b\r\n',
  },
  {
    name: 'an error reply is its code word and message',
    reply: errorReply('NOTINT', 'value is not an integer'),
    resp2: '-NOTINT value is not an integer\r\n',
    resp3: '-NOTINT value is not an integer\r\n',
  },
  {
    name: 'CR and LF in an error message become spaces, so no reply can be forged',
    reply: errorReply('ERR', "unknown command 'x\r\n:1\r\n'"),
    resp2: "-ERR unknown command 'x  :1  '\r\n",
    resp3: "-ERR unknown command 'x  :1  '\r\n",
  },
  {
    name: 'an error message is text and goes out as UTF-8',
    reply: noSession('abcdefgh'),
    resp2: '-NOSESSION no such session: abcd\xe2\x80\xa6\r\n',
    resp3: '-NOSESSION no such session: abcd\xe2\x80\xa6\r\n',
  },
  {
    name: 'a SessiondError is its error reply',
    reply: new SessiondError('LIMIT', 'vars exceeds 1000'),
    resp2: '-LIMIT vars exceeds 1000\r\n',
    resp3: '-LIMIT vars exceeds 1000\r\n',
  },
  {
    name: 'a ProtocolError reads as Redis writes it',
    reply: new ProtocolError('bulk-length', 'invalid bulk length'),
    resp2: '-ERR Protocol error: invalid bulk length\r\n',
    resp3: '-ERR Protocol error: invalid bulk length\r\n',
  },
  {
    name: 'a map is % under RESP3 and a flat array under RESP2',
    reply: mapReply([
      ['cart', '3'],
      ['user', null],
    ]),
    resp2: '*4\r\n$4\r\ncart\r\n$1\r\n3\r\n$4\r\nuser\r\n$-1\r\n',
    resp3: '%2\r\n$4\r\ncart\r\n$1\r\n3\r\n$4\r\nuser\r\n_\r\n',
  },
  {
    name: 'a Map is a map in its insertion order',
    reply: mapReply(
      new Map<Reply, Reply>([
        ['server', simpleString('sessiond')],
        ['proto', 3],
      ]),
    ),
    resp2: '*4\r\n$6\r\nserver\r\n+sessiond\r\n$5\r\nproto\r\n:3\r\n',
    resp3: '%2\r\n$6\r\nserver\r\n+sessiond\r\n$5\r\nproto\r\n:3\r\n',
  },
  {
    name: 'an empty map is %0, *0 under RESP2',
    reply: mapReply([]),
    resp2: '*0\r\n',
    resp3: '%0\r\n',
  },
  {
    name: 'a push is > under RESP3 and an array under RESP2, as pub/sub messages are',
    reply: pushReply(['message', 'events:created', 'sid']),
    resp2: '*3\r\n$7\r\nmessage\r\n$14\r\nevents:created\r\n$3\r\nsid\r\n',
    resp3: '>3\r\n$7\r\nmessage\r\n$14\r\nevents:created\r\n$3\r\nsid\r\n',
  },
  {
    name: 'a double is , under RESP3 and a bulk string under RESP2',
    reply: doubleReply(1.5),
    resp2: '$3\r\n1.5\r\n',
    resp3: ',1.5\r\n',
  },
  {
    name: 'infinite and NaN doubles are inf, -inf and nan',
    reply: [doubleReply(Infinity), doubleReply(-Infinity), doubleReply(Number.NaN)],
    resp2: '*3\r\n$3\r\ninf\r\n$4\r\n-inf\r\n$3\r\nnan\r\n',
    resp3: '*3\r\n,inf\r\n,-inf\r\n,nan\r\n',
  },
];

describe('ReplyWriter', () => {
  for (const { name, reply, resp2, resp3 } of cases) {
    describe(name, () => {
      it('under RESP2', () => {
        assert.equal(encodeReply(reply, 2).toString('latin1'), resp2);
      });
      it('under RESP3', () => {
        assert.equal(encodeReply(reply, 3).toString('latin1'), resp3);
      });
      it('the same through the writer methods, batched with other replies', () => {
        const writer = new ReplyWriter(3).simple('before').write(reply).integer(1);
        assert.equal(writer.toBuffer().toString('latin1'), `+before\r\n${resp3}:1\r\n`);
      });
    });
  }

  it('a batch of replies comes out as one Buffer, their concatenation', () => {
    const writer = new ReplyWriter();
    writer.simple('OK').integer(1).bulk('cart=3').nil().error('NOSESSION', 'no such session');
    writer.write(['a', BIG]).arrayHeader(2).bulk(BIG).bulk(null);
    const expected =
      '+OK\r\n:1\r\n$6\r\ncart=3\r\n$-1\r\n-NOSESSION no such session\r\n' +
      `*2\r\n$1\r\na\r\n$5000\r\n${BIG.toString('latin1')}\r\n` +
      `*2\r\n$5000\r\n${BIG.toString('latin1')}\r\n$-1\r\n`;
    assert.equal(writer.byteLength, expected.length);
    assert.equal(writer.toBuffer().toString('latin1'), expected);
  });

  it('toBuffer() starts a new, empty batch', () => {
    const writer = new ReplyWriter();
    writer.integer(1);
    assert.equal(writer.toBuffer().toString('latin1'), ':1\r\n');
    assert.equal(writer.byteLength, 0);
    assert.equal(writer.toBuffer().length, 0);
    writer.integer(2);
    assert.equal(writer.toBuffer().toString('latin1'), ':2\r\n');
  });

  it('headers let a long reply be streamed item by item', () => {
    const writer = new ReplyWriter(2);
    writer.mapHeader(1).bulk('k').bulk('v').pushHeader(1).bulk('m').arrayHeader(0);
    assert.equal(
      writer.toBuffer().toString('latin1'),
      '*2\r\n$1\r\nk\r\n$1\r\nv\r\n*1\r\n$1\r\nm\r\n*0\r\n',
    );
    writer.version = 3;
    writer.mapHeader(1).bulk('k').bulk('v').pushHeader(1).bulk('m');
    assert.equal(
      writer.toBuffer().toString('latin1'),
      '%1\r\n$1\r\nk\r\n$1\r\nv\r\n>1\r\n$1\r\nm\r\n',
    );
  });

  it('the version can change mid-batch, as HELLO 3 does', () => {
    const writer = new ReplyWriter(2);
    writer.nil();
    writer.version = 3;
    writer.nil();
    assert.equal(writer.toBuffer().toString('latin1'), '$-1\r\n_\r\n');
  });

  it('an integer that is not a safe integer or 64-bit is refused', () => {
    const writer = new ReplyWriter();
    assert.throws(() => writer.integer(1.5), TypeError);
    assert.throws(() => writer.integer(Number.NaN), TypeError);
    assert.throws(() => writer.integer(2 ** 53), TypeError);
    assert.throws(() => writer.integer(2n ** 63n), RangeError);
    assert.throws(() => writer.integer(-(2n ** 63n) - 1n), RangeError);
    assert.throws(() => writer.arrayHeader(-1), RangeError);
    assert.equal(writer.byteLength, 0);
  });

  it('a reply that fails to encode leaves the batch as it was, never half a frame', () => {
    const writer = new ReplyWriter();
    writer.simple('OK');
    assert.throws(() => writer.write(['a', BIG, ['b', 1.5]]), TypeError);
    assert.throws(() => writer.write(mapReply([['k', 2n ** 64n]])), RangeError);
    assert.equal(writer.byteLength, 5);
    writer.integer(1);
    assert.equal(writer.toBuffer().toString('latin1'), '+OK\r\n:1\r\n');
  });

  it('a request written as an array of bulk strings decodes to the same bytes', () => {
    const args = ['SET', 'sid', ALL_BYTES.toString('latin1'), '\r\n*1\r\n$4\r\nPING\r\n', ''];
    const decoder = new RequestDecoder();
    decoder.push(encodeReply(args));
    assert.deepEqual(decoder.next(), args);
    assert.equal(decoder.next(), undefined);
  });
});
