import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { describe, it } from 'node:test';
import {
  DEFAULT_DECODER_LIMITS,
  KnownNames,
  RequestDecoder,
  type Command,
  type DecoderLimits,
} from './decoder.ts';
import { ProtocolError, type ProtocolErrorReason } from './protocol-error.ts';

/** What a decoder made of some input: the commands, then the error that stopped it, if any. */
interface Outcome {
  commands: Command[];
  error?: { reason: ProtocolErrorReason; message: string };
}

interface Case {
  /** A sentence about the behaviour. */
  name: string;
  /** The bytes; a string is taken byte for byte (latin1). */
  input: string | Buffer;
  commands: Command[];
  error?: { reason: ProtocolErrorReason; message: string };
  limits?: Partial<DecoderLimits>;
}

const bytes = (input: string | Buffer): Buffer =>
  typeof input === 'string' ? Buffer.from(input, 'latin1') : input;

/** A request in RESP multibulk form, arguments taken byte for byte. */
const multibulk = (...args: string[]): string =>
  `*${args.length}\r\n` + args.map((a) => `$${a.length}\r\n${a}\r\n`).join('');

/** Pushes each chunk and drains the decoder after each, as a server does. */
function decode(chunks: Iterable<Buffer>, limits?: Partial<DecoderLimits>): Outcome {
  const decoder = new RequestDecoder(limits);
  const commands: Command[] = [];
  for (const chunk of chunks) {
    decoder.push(chunk);
    for (let got = decoder.next(); got !== undefined; got = decoder.next()) {
      if (got instanceof ProtocolError) {
        return { commands, error: { reason: got.reason, message: got.message } };
      }
      commands.push(got);
    }
  }
  return { commands };
}

function* byteByByte(input: Buffer): Generator<Buffer> {
  for (let i = 0; i < input.length; i++) yield input.subarray(i, i + 1);
}

/** Runs one case whole, byte by byte, and split in two at every offset (node-redis decoder.spec.ts). */
function replay({ name, input, commands, error, limits }: Case): void {
  const expected: Outcome = error === undefined ? { commands } : { commands, error };
  const data = bytes(input);
  describe(name, () => {
    it('when written whole', () => {
      assert.deepEqual(decode([data], limits), expected);
    });
    it('when written byte by byte', () => {
      assert.deepEqual(decode(byteByByte(data), limits), expected);
    });
    it('when split in two at every offset', () => {
      for (let i = 1; i < data.length; i++) {
        const outcome = decode([data.subarray(0, i), data.subarray(i)], limits);
        assert.deepEqual(outcome, expected, `split at ${i}`);
      }
    });
  });
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('latin1');

const invalidMultibulk = {
  reason: 'multibulk-length',
  message: 'Protocol error: invalid multibulk length',
} as const;
const invalidBulk = {
  reason: 'bulk-length',
  message: 'Protocol error: invalid bulk length',
} as const;
const unbalanced = {
  reason: 'inline-quotes',
  message: 'Protocol error: unbalanced quotes in request',
} as const;
const tooBigInline = {
  reason: 'inline-length',
  message: 'Protocol error: too big inline request',
} as const;
const tooBigRequest = {
  reason: 'query-buffer',
  message: 'Protocol error: too big request',
} as const;
const httpRequest = {
  reason: 'http',
  message: 'Protocol error: HTTP request sent to the RESP port',
} as const;

describe('RequestDecoder', () => {
  describe('multibulk requests', () => {
    const cases: Case[] = [
      {
        name: 'a SET request yields its three arguments',
        input: '*3\r\n$3\r\nSET\r\n$3\r\nsid\r\n$5\r\nvalue\r\n',
        commands: [['SET', 'sid', 'value']],
      },
      {
        name: 'pipelined requests come out one by one, in order',
        input: multibulk('PING') + multibulk('GET', 's', 'n') + multibulk('DESTROY', 's'),
        commands: [['PING'], ['GET', 's', 'n'], ['DESTROY', 's']],
      },
      {
        name: 'an empty bulk argument is the empty string',
        input: '*3\r\n$3\r\nGET\r\n$0\r\n\r\n$1\r\nx\r\n',
        commands: [['GET', '', 'x']],
      },
      {
        name: 'NUL, CR, LF and 0xff bytes inside bulk arguments come out byte for byte',
        input: multibulk('SET', '\0\r\n\xff', '\r\n', ALL_BYTES),
        commands: [['SET', '\0\r\n\xff', '\r\n', ALL_BYTES]],
      },
      {
        name: 'a bulk argument that looks like a request is only data',
        input: multibulk('SET', multibulk('DESTROY', 'x'), 'PING\r\n'),
        commands: [['SET', multibulk('DESTROY', 'x'), 'PING\r\n']],
      },
      {
        name: '*0 carries no command and is skipped, as Redis skips it',
        input: '*0\r\n' + multibulk('PING'),
        commands: [['PING']],
      },
      {
        name: '*-1, the null array, carries no command and is skipped',
        input: '*-1\r\n' + multibulk('PING'),
        commands: [['PING']],
      },
      {
        name: 'multibulk and inline requests can be mixed on one connection',
        input: 'PING\r\n' + multibulk('ECHO', 'a b') + 'GET s n\n',
        commands: [['PING'], ['ECHO', 'a b'], ['GET', 's', 'n']],
      },
    ];
    for (const c of cases) replay(c);
  });

  describe('half frames', () => {
    const halves = [
      '*',
      '*3',
      '*3\r',
      '*3\r\n',
      '*3\r\n$',
      '*3\r\n$3',
      '*3\r\n$3\r',
      '*3\r\n$3\r\nSE',
      '*3\r\n$3\r\nSET',
      '*3\r\n$3\r\nSET\r',
      '*3\r\n$3\r\nSET\r\n$3\r\nsid\r\n$5\r\nvalu',
      '*-',
      '*-1\r',
      'PING',
      'PING\r',
      'SET "unfinished quote',
      '*1\r\n$8388608\r\nonly a little of it',
    ];
    for (const input of halves) {
      replay({
        name: `${JSON.stringify(input)} yields nothing and no error yet`,
        input,
        commands: [],
      });
    }
    replay({
      name: 'a complete request followed by half of one yields only the complete one',
      input: multibulk('PING') + '*2\r\n$3\r\nGET\r\n$3\r\nab',
      commands: [['PING']],
    });
  });

  describe('inline requests', () => {
    const cases: Case[] = [
      { name: 'PING ending in CRLF is a command', input: 'PING\r\n', commands: [['PING']] },
      {
        name: 'a line may end in a bare LF',
        input: 'PING\nPING\n',
        commands: [['PING'], ['PING']],
      },
      {
        name: 'words are split on runs of spaces and tabs, leading and trailing ones ignored',
        input: '  SET \t sid   name\tvalue  \r\n',
        commands: [['SET', 'sid', 'name', 'value']],
      },
      {
        name: 'empty and blank lines are skipped',
        input: '\r\n\n   \r\n\t\nPING\r\n',
        commands: [['PING']],
      },
      {
        name: 'a CR inside a line separates words',
        input: 'GET\rsid\r\n',
        commands: [['GET', 'sid']],
      },
      {
        name: 'vertical tab and form feed are skipped before a word but belong to it after',
        input: '\vGET \fa\vb\r\n"q" \vc\fd\r\n',
        commands: [
          ['GET', 'a\vb'],
          ['q', 'c\fd'],
        ],
      },
      {
        name: 'double quotes take \\n \\r \\t \\b \\a, \\xHH and \\<other> escapes',
        input: 'SET "a\\n\\r\\t\\b\\a\\x41\\xfF\\"\\\\\\q" x\r\n',
        commands: [['SET', 'a\n\r\t\b\x07A\xff"\\q', 'x']],
      },
      {
        name: 'a \\x escape without two hex digits stands for x',
        input: 'SET "\\xZZ" "\\x4"\r\n',
        commands: [['SET', 'xZZ', 'x4']],
      },
      {
        name: "single quotes keep backslashes and take only \\' as an escape",
        input: "SET 'a\\n\\'b' x\r\n",
        commands: [['SET', "a\\n'b", 'x']],
      },
      {
        name: 'quotes keep spaces and an empty pair is an empty argument',
        input: `SET "a b" '' ""\r\n`,
        commands: [['SET', 'a b', '', '']],
      },
      {
        name: 'a quote may open in the middle of a word',
        input: 'SET a"b c"\r\n',
        commands: [['SET', 'ab c']],
      },
      {
        name: 'NUL and bytes above 0x7f are ordinary bytes of a word',
        input: 'SET a\0b \xff\x80\r\n',
        commands: [['SET', 'a\0b', '\xff\x80']],
      },
      {
        name: 'a closing double quote followed by a letter is unbalanced',
        input: 'PING\r\nSET "a"b\r\n',
        commands: [['PING']],
        error: unbalanced,
      },
      {
        name: 'a closing single quote followed by a letter is unbalanced',
        input: "SET 'a'b\r\n",
        commands: [],
        error: unbalanced,
      },
      {
        name: 'an unterminated double quote is unbalanced',
        input: 'SET "abc\r\n',
        commands: [],
        error: unbalanced,
      },
      {
        name: 'an unterminated single quote is unbalanced',
        input: "SET 'abc\r\n",
        commands: [],
        error: unbalanced,
      },
      {
        name: 'a backslash ending a quoted word is unbalanced',
        input: 'SET "abc\\\r\n',
        commands: [],
        error: unbalanced,
      },
      {
        name: 'an HTTP POST line is refused as a cross-protocol attack',
        input: 'POST /session HTTP/1.1\r\nContent-Length: 5\r\n\r\nPING\r\n',
        commands: [],
        error: httpRequest,
      },
      {
        name: 'a Host: header line is refused, whatever its case',
        input: 'GET / HTTP/1.1\r\nhOsT: localhost:8086\r\n\r\n',
        commands: [['GET', '/', 'HTTP/1.1']],
        error: httpRequest,
      },
    ];
    for (const c of cases) replay(c);
  });

  describe('malformed requests', () => {
    const cases: Case[] = [
      {
        name: 'a count with a plus sign is invalid',
        input: '*+1\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'a count with a leading space is invalid',
        input: '* 1\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'a count with a trailing space is invalid',
        input: '*1 \r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'a count with a leading zero is invalid',
        input: '*01\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      { name: 'a count of -0 is invalid', input: '*-0\r\n', commands: [], error: invalidMultibulk },
      {
        name: 'a count below -1 is invalid',
        input: '*-2\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      { name: 'an empty count is invalid', input: '*\r\n', commands: [], error: invalidMultibulk },
      {
        name: 'a non-numeric count is invalid',
        input: '*abc\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'a count in hex is invalid',
        input: '*0x10\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'a count whose CR is not followed by LF is invalid',
        input: '*1\rx$4\r\nPING\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'a count that overflows 64 bits is invalid',
        input: '*99999999999999999999\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'a count line longer than 20 characters is refused before its CRLF arrives',
        input: '*000000000000000000001',
        commands: [],
        error: {
          reason: 'multibulk-length',
          message: 'Protocol error: too big mbulk count string',
        },
      },
      {
        name: 'a negative bulk length is invalid',
        input: '*1\r\n$-1\r\n',
        commands: [],
        error: invalidBulk,
      },
      {
        name: 'a bulk length below -1 is invalid',
        input: '*1\r\n$-5\r\n',
        commands: [],
        error: invalidBulk,
      },
      {
        name: 'a bulk length with a plus sign is invalid',
        input: '*1\r\n$+4\r\nPING\r\n',
        commands: [],
        error: invalidBulk,
      },
      {
        name: 'a bulk length with a space is invalid',
        input: '*1\r\n$ 4\r\nPING\r\n',
        commands: [],
        error: invalidBulk,
      },
      {
        name: 'a 64-bit bulk length is invalid',
        input: '*1\r\n$9223372036854775807\r\n',
        commands: [],
        error: invalidBulk,
      },
      {
        name: 'a bulk length line longer than 20 characters is refused before its CRLF arrives',
        input: '*1\r\n$123456789012345678901',
        commands: [],
        error: { reason: 'bulk-length', message: 'Protocol error: too big bulk count string' },
      },
      {
        name: "an argument that does not start with '$' is refused, naming the byte",
        input: '*2\r\n$4\r\nECHO\r\n:1\r\n',
        commands: [],
        error: { reason: 'bulk-prefix', message: "Protocol error: expected '$', got ':'" },
      },
      {
        name: "a control byte in place of '$' is named escaped",
        input: '*1\r\n\0\r\n',
        commands: [],
        error: { reason: 'bulk-prefix', message: "Protocol error: expected '$', got '\\x00'" },
      },
      {
        name: 'a bulk length shorter than its payload breaks the frame and is refused',
        input: '*1\r\n$3\r\nPING\r\n',
        commands: [],
        error: {
          reason: 'bulk-terminator',
          message: 'Protocol error: expected CRLF after bulk string',
        },
      },
      {
        name: 'a bulk length longer than its payload breaks the frame once the bytes arrive',
        input: '*2\r\n$5\r\nPING\r\n$1\r\nx\r\n',
        commands: [],
        error: {
          reason: 'bulk-terminator',
          message: 'Protocol error: expected CRLF after bulk string',
        },
      },
      {
        name: 'requests before a protocol error are still returned, none after it',
        input: multibulk('PING') + multibulk('GET', 'a', 'b') + '*1\r\n$x\r\n' + multibulk('PING'),
        commands: [['PING'], ['GET', 'a', 'b']],
        error: invalidBulk,
      },
      {
        name: 'binary garbage after a star is refused',
        input: '*\xff\xfe\0\r\n',
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'binary garbage without a star is an inline line and its words',
        input: '\xff\xfe\0 \x01\n',
        commands: [['\xff\xfe\0', '\x01']],
      },
    ];
    for (const c of cases) replay(c);
  });

  describe('limits at their edges', () => {
    const get = (value: string) => multibulk('GET', 'sid', value);
    const cases: Case[] = [
      {
        name: 'a bulk argument exactly maxBulkLength long passes',
        input: get('1234'),
        limits: { maxBulkLength: 4 },
        commands: [['GET', 'sid', '1234']],
      },
      {
        name: 'a bulk argument one byte over maxBulkLength is refused on its length line',
        input: '*3\r\n$3\r\nGET\r\n$3\r\nsid\r\n$5\r\n',
        limits: { maxBulkLength: 4 },
        commands: [],
        error: invalidBulk,
      },
      {
        name: 'a request with exactly maxArgs arguments passes',
        input: get('x'),
        limits: { maxArgs: 3 },
        commands: [['GET', 'sid', 'x']],
      },
      {
        name: 'a request with one argument over maxArgs is refused on its count line',
        input: '*4\r\n',
        limits: { maxArgs: 3 },
        commands: [],
        error: invalidMultibulk,
      },
      {
        name: 'an inline line with exactly maxArgs words passes',
        input: 'GET sid x\r\n',
        limits: { maxArgs: 3 },
        commands: [['GET', 'sid', 'x']],
      },
      {
        name: 'an inline line with one word over maxArgs is refused',
        input: 'GET sid x y\r\n',
        limits: { maxArgs: 3 },
        commands: [],
        error: {
          reason: 'inline-args',
          message: 'Protocol error: too many arguments in inline request',
        },
      },
      {
        name: 'an inline line exactly maxInlineLength long passes with CRLF',
        input: 'GET s 12\r\n',
        limits: { maxInlineLength: 8 },
        commands: [['GET', 's', '12']],
      },
      {
        name: 'an inline line exactly maxInlineLength long passes with a bare LF',
        input: 'GET s 12\n',
        limits: { maxInlineLength: 8 },
        commands: [['GET', 's', '12']],
      },
      {
        name: 'an inline line one byte over maxInlineLength is refused',
        input: 'GET s 123\r\n',
        limits: { maxInlineLength: 8 },
        commands: [],
        error: tooBigInline,
      },
      {
        name: 'an inline line of maxInlineLength bytes and a CR still waits for its LF',
        input: 'GET s 12\r',
        limits: { maxInlineLength: 8 },
        commands: [],
      },
      {
        name: 'an inline line is refused once it is over maxInlineLength, before any LF',
        input: 'GET s 123',
        limits: { maxInlineLength: 8 },
        commands: [],
        error: tooBigInline,
      },
      {
        name: 'a request of exactly maxQueryBuffer bytes passes',
        input: get('0123456789'),
        limits: { maxQueryBuffer: get('0123456789').length },
        commands: [['GET', 'sid', '0123456789']],
      },
      {
        name: 'a request one byte over maxQueryBuffer is refused on its last length line',
        input: '*3\r\n$3\r\nGET\r\n$3\r\nsid\r\n$10\r\n',
        limits: { maxQueryBuffer: get('0123456789').length - 1 },
        commands: [],
        error: tooBigRequest,
      },
      {
        name: 'maxQueryBuffer applies to each request, not to a pipeline',
        input: get('0123456789') + get('0123456789') + get('0123456789'),
        limits: { maxQueryBuffer: get('0123456789').length },
        commands: [
          ['GET', 'sid', '0123456789'],
          ['GET', 'sid', '0123456789'],
          ['GET', 'sid', '0123456789'],
        ],
      },
    ];
    for (const c of cases) replay(c);
  });

  describe('default limits', () => {
    it('are 8 MiB per bulk, 65536 arguments, 64 KiB per inline line and 16 MiB per request', () => {
      assert.deepEqual(new RequestDecoder().limits, {
        maxBulkLength: 8 * 1024 * 1024,
        maxArgs: 65536,
        maxInlineLength: 64 * 1024,
        maxQueryBuffer: 16 * 1024 * 1024,
      });
      assert.deepEqual(new RequestDecoder().limits, DEFAULT_DECODER_LIMITS);
    });

    it('let an 8 MiB value through and refuse a length of one byte more', () => {
      const value = 'v'.repeat(8 * 1024 * 1024);
      assert.deepEqual(decode([bytes(multibulk('SETDATA', 's', value))]), {
        commands: [['SETDATA', 's', value]],
      });
      assert.deepEqual(
        decode([bytes(`*3\r\n$7\r\nSETDATA\r\n$1\r\ns\r\n$${value.length + 1}\r\n`)]),
        {
          commands: [],
          error: invalidBulk,
        },
      );
    });

    it('let 65536 arguments through and refuse a count of 65537', () => {
      const args = Array.from({ length: 65536 }, () => '');
      assert.deepEqual(decode([bytes(multibulk(...args))]), { commands: [args] });
      assert.deepEqual(decode([bytes('*65537\r\n')]), { commands: [], error: invalidMultibulk });
    });

    it('let a 64 KiB inline line through, even byte by byte, and refuse one byte more', () => {
      const line = 'ECHO ' + 'x'.repeat(64 * 1024 - 5);
      const expected = { commands: [['ECHO', 'x'.repeat(64 * 1024 - 5)]] };
      assert.deepEqual(decode([bytes(line + '\r\n')]), expected);
      assert.deepEqual(decode(byteByByte(bytes(line + '\r\n'))), expected);
      assert.deepEqual(decode([bytes(line + 'x\r\n')]), { commands: [], error: tooBigInline });
      assert.deepEqual(decode(byteByByte(bytes(line + 'x\r\n'))), {
        commands: [],
        error: tooBigInline,
      });
    });

    it('let a 16 MiB request through and refuse one of a byte more', () => {
      const big = 'a'.repeat(8 * 1024 * 1024);
      const head = multibulk('SET', 's', big).length;
      // The last bulk's own framing ("$<digits>\r\n" and "\r\n") is 12 bytes for a 7-digit length.
      const rest = 16 * 1024 * 1024 - head - 12;
      const exact = `*4${multibulk('SET', 's', big).slice(2)}$${rest}\r\n${'b'.repeat(rest)}\r\n`;
      assert.equal(exact.length, 16 * 1024 * 1024);
      const outcome = decode([bytes(exact)]);
      assert.equal(outcome.error, undefined);
      assert.equal(outcome.commands.length, 1);
      const over = `*4${multibulk('SET', 's', big).slice(2)}$${rest + 1}\r\n`;
      assert.deepEqual(decode([bytes(over)]), { commands: [], error: tooBigRequest });
    });
  });

  describe('memory', () => {
    it('a huge declared count allocates no array of that size up front', () => {
      const decoder = new RequestDecoder({ maxArgs: 10_000_000 });
      const before = process.memoryUsage().heapUsed;
      decoder.push(bytes('*10000000\r\n$4\r\nPING\r\n'));
      assert.equal(decoder.next(), undefined);
      // An array of ten million slots would take 80 MB of heap.
      assert.ok(process.memoryUsage().heapUsed - before < 8 * 1024 * 1024);
    });

    it('a huge declared bulk length holds only the bytes that have arrived', () => {
      const decoder = new RequestDecoder({
        maxBulkLength: 256 * 1024 * 1024,
        maxQueryBuffer: 2 ** 30,
      });
      const before = process.memoryUsage().arrayBuffers;
      decoder.push(bytes('*1\r\n$268435456\r\nabc'));
      assert.equal(decoder.next(), undefined);
      decoder.push(bytes('def'));
      assert.equal(decoder.next(), undefined);
      assert.equal(decoder.bufferedBytes, 6);
      assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024);
    });

    it('a big bulk arriving in many small chunks is whole once its last byte arrives', () => {
      const value = Buffer.alloc(1024 * 1024 + 7, 'xy\r\n\0\xff', 'latin1').toString('latin1');
      const input = bytes(multibulk('SETDATA', 's', value) + multibulk('PING'));
      const chunks = [];
      for (let i = 0; i < input.length; i += 61) chunks.push(input.subarray(i, i + 61));
      assert.deepEqual(decode(chunks), { commands: [['SETDATA', 's', value], ['PING']] });
    });

    it('a chunk may be reused once next() has returned undefined', () => {
      const decoder = new RequestDecoder();
      const chunk = bytes('*2\r\n$4\r\nECHO\r\n$4\r\nab');
      decoder.push(chunk);
      assert.equal(decoder.next(), undefined);
      chunk.fill(0);
      decoder.push(bytes('cd\r\n'));
      assert.deepEqual(decoder.next(), ['ECHO', 'abcd']);
    });

    it('bufferedBytes counts the tail of a request not yet complete', () => {
      const decoder = new RequestDecoder();
      decoder.push(bytes(multibulk('PING') + '*1\r\n$4\r\nPI'));
      assert.deepEqual(decoder.next(), ['PING']);
      assert.equal(decoder.next(), undefined);
      assert.equal(decoder.bufferedBytes, 2);
    });
  });

  describe('after a protocol error', () => {
    it('next() keeps returning the same error and push() drops its input', () => {
      const decoder = new RequestDecoder();
      decoder.push(bytes('*x\r\n'));
      const error = decoder.next();
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.code, 'ERR');
      assert.equal(error.toWire(), 'ERR Protocol error: invalid multibulk length');
      decoder.push(bytes(multibulk('PING')));
      assert.equal(decoder.next(), error);
      assert.equal(decoder.error, error);
      assert.equal(decoder.bufferedBytes, 0);
    });
  });

  describe('limits', () => {
    it('setLimits() applies to the requests that follow', () => {
      const decoder = new RequestDecoder({ maxArgs: 2 });
      decoder.push(bytes(multibulk('AUTH', 'pw')));
      assert.deepEqual(decoder.next(), ['AUTH', 'pw']);
      decoder.setLimits({ maxArgs: 3 });
      assert.equal(decoder.limits.maxArgs, 3);
      decoder.push(bytes(multibulk('GET', 's', 'n')));
      assert.deepEqual(decoder.next(), ['GET', 's', 'n']);
    });

    it('a limit that is not a positive safe integer is a RangeError', () => {
      for (const limits of [
        { maxArgs: 0 },
        { maxBulkLength: -1 },
        { maxInlineLength: 1.5 },
        { maxQueryBuffer: Number.NaN },
        { maxQueryBuffer: 2 ** 53 },
        { maxBulkLength: 2 ** 40 },
      ]) {
        assert.throws(() => new RequestDecoder(limits), RangeError, JSON.stringify(limits));
      }
      assert.throws(() => new RequestDecoder().setLimits({ maxArgs: 0 }), RangeError);
    });
  });

  describe('known command names', () => {
    const names = new KnownNames(['GET', 'SET', 'DESTROYUSER']);
    const decode = (wire: string): Command[] => {
      const decoder = new RequestDecoder({}, names);
      decoder.push(Buffer.from(wire, 'latin1'));
      const out: Command[] = [];
      for (let got = decoder.next(); got !== undefined; got = decoder.next()) {
        assert.ok(!(got instanceof ProtocolError));
        out.push(got);
      }
      return out;
    };

    it('returns a known first argument upper-cased, in whatever case it was sent', () => {
      assert.deepEqual(decode('*2\r\n$3\r\nget\r\n$3\r\nset\r\n*1\r\n$11\r\nDestroyUser\r\n'), [
        ['GET', 'set'],
        ['DESTROYUSER'],
      ]);
    });

    it('returns any other first argument as sent, a near miss or a byte that only looks alike', () => {
      // Clearing bit 5 turns 0xC7 into 0xC7 and '`' into '@': neither may pass for a 'G'.
      assert.deepEqual(
        decode('*1\r\n$3\r\nGEX\r\n*1\r\n$4\r\nGETS\r\n*1\r\n$3\r\n\xc7ET\r\n*1\r\n$3\r\n`ET\r\n'),
        [['GEX'], ['GETS'], ['\xc7ET'], ['`ET']],
      );
    });

    it('cuts short and long arguments alike across a batch far longer than one text window', () => {
      const requests: Command[] = [];
      for (let i = 0; i < 2000; i++) {
        const short = String.fromCharCode(i % 256).repeat(1 + (i % 12));
        requests.push(['SET', `s${i}`, short, 'v'.repeat(i % 30)]);
      }
      const wire = requests
        .map((r) => `*${r.length}\r\n` + r.map((a) => `$${a.length}\r\n${a}\r\n`).join(''))
        .join('');
      assert.ok(wire.length > 40_000);
      assert.deepEqual(decode(wire), requests);
      // Split into odd-sized chunks, each decoded as it arrives.
      const decoder = new RequestDecoder({}, names);
      const got: Command[] = [];
      for (let at = 0; at < wire.length; at += 997) {
        decoder.push(Buffer.from(wire.slice(at, at + 997), 'latin1'));
        for (let r = decoder.next(); r !== undefined; r = decoder.next()) {
          assert.ok(!(r instanceof ProtocolError));
          got.push(r);
        }
      }
      assert.deepEqual(got, requests);
    });

    it('refuses names that are not upper-case ASCII letters', () => {
      assert.throws(() => new KnownNames(['get']), RangeError);
      assert.throws(() => new KnownNames(['GET2']), RangeError);
    });
  });

  describe('seeded random input', () => {
    it('random binary requests come out the same however they are chunked', () => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const random = prng(seed);
        const commands: Command[] = [];
        for (let i = 0; i < 200; i++) {
          const argc = 1 + Math.floor(random() * 5);
          commands.push(Array.from({ length: argc }, () => randomBytes(random, random() * 300)));
        }
        const input = bytes(commands.map((c) => multibulk(...c)).join(''));
        const chunks = [];
        for (let i = 0; i < input.length;) {
          const size = 1 + Math.floor(random() * 100);
          chunks.push(input.subarray(i, i + size));
          i += size;
        }
        assert.deepEqual(decode([input]), { commands }, `seed ${seed}, whole`);
        assert.deepEqual(decode(chunks), { commands }, `seed ${seed}, chunked`);
      }
    });

    it('random garbage never throws and decodes the same whole, byte by byte and split', () => {
      const tokens = ['*', '$', '\r', '\n', '\r\n', '-', '1', '3', '0', ' ', '"', "'", '\\', 'x'];
      const random = prng(42);
      for (let round = 0; round < 300; round++) {
        let text = '';
        while (text.length < 40) {
          text +=
            random() < 0.7
              ? (tokens[Math.floor(random() * tokens.length)] as string)
              : randomBytes(random, 3);
        }
        const input = bytes(text);
        const limits = { maxInlineLength: 16, maxBulkLength: 8, maxArgs: 4 };
        const whole = decode([input], limits);
        const label = JSON.stringify(text);
        assert.deepEqual(decode(byteByByte(input), limits), whole, label);
        for (let i = 1; i < input.length; i++) {
          assert.deepEqual(decode([input.subarray(0, i), input.subarray(i)], limits), whole, label);
        }
      }
    });
  });
});

/** A small seeded generator (mulberry32), so random tests replay exactly. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function randomBytes(random: () => number, length: number): string {
  let out = '';
  for (let i = 0; i < Math.floor(length); i++)
    out += String.fromCharCode(Math.floor(random() * 256));
  return out;
}
