/**
 * Abuse of the RESP port. Each attack opens its own connection, sends one generated input and
 * judges the answer against PROTOCOL.md: every error begins with a known code word, a protocol
 * error is the last reply and the server closes the connection after it, and well-formed
 * commands around bad ones are answered in order.
 */
import { COMMAND_TABLE } from '../../src/server/commands/table.ts';
import { CONNECTION_COMMANDS } from '../../src/server/resp-connection.ts';
import type { Attack, AttackContext } from './attack.ts';
import { encodeCommand } from './resp-client.ts';
import type { Rng } from './rng.ts';
import {
  errorCode,
  isMaxClients,
  isProtocolError,
  KNOWN_CODES,
  readRespReplies,
  Wire,
  withWire,
  type RespReply,
} from './wire.ts';

/** How long a reply that is due may take before it counts as a stall. */
const ANSWER_MS = 10_000;

/** Attacker sessions: a few ids, so what attackers store stays bounded. */
const sid = (rng: Rng) => `fz-${rng.int(0, 31)}`;
/** Binary-safe echo payloads: NUL, CR LF and high bytes included. */
const token = (rng: Rng) => rng.bytes(rng.size(40));

type Args = Array<string | Buffer>;

/** A well-formed command on the attackers' own sessions (never EMPTY: the control's would go). */
function validCommand(rng: Rng): Args {
  const s = sid(rng);
  const name = `v${rng.int(0, 7)}`;
  return rng.weighted<() => Args>([
    [() => ['PING'], 1],
    [() => ['PING', token(rng)], 2],
    [() => ['CREATE', s, 'TIMEOUT', String(rng.int(1, 60))], 2],
    [() => ['SET', s, name, token(rng)], 3],
    [() => ['GET', s, name], 3],
    [() => ['GET', s, name, 'default'], 1],
    [() => ['INC', s, 'n', String(rng.int(-5, 5))], 2],
    [() => ['GETALL', s], 1],
    [() => ['UNSET', s, name], 1],
    [() => ['TOUCH', s], 1],
    [() => ['CTL', s, rng.pick(['EXIST', 'TTL', 'AGE', 'TLA', 'NOW'])], 1],
    [() => ['COUNT'], 1],
    [() => ['LIST', 'CURSOR', '0', 'COUNT', '5'], 1],
    [() => ['LOCK', s, 'LEASE', '200'], 1],
    [() => ['SETDATA', s, token(rng)], 1],
    [() => ['GETDATA', s], 1],
    [() => ['RANDSTR', String(rng.int(1, 64))], 1],
    [() => ['HELLO', rng.pick(['2', '3'])], 1],
    [() => ['INFO'], 1],
  ])();
}

/** Opens a connection to the RESP port; null when even TCP failed (an outcome, not a finding). */
function open(context: AttackContext): Promise<Wire | null> {
  return Wire.open(context.respPort, context.open);
}

interface Judged {
  replies: RespReply[];
  refused: boolean;
  protocolError: boolean;
}

/**
 * The checks every answer must pass, whatever was sent: RESP only, error codes from
 * PROTOCOL.md, nothing after a protocol error, and the connection closed after one.
 */
async function judge(
  context: AttackContext,
  kind: string,
  wire: Wire,
  input: Buffer,
): Promise<Judged> {
  const first = readRespReplies(wire.bytes).replies;
  const refused = isMaxClients(first[0]);
  if (first.some(isProtocolError) && !refused && !(await wire.closedWithin(ANSWER_MS))) {
    context.finding(kind, 'connection left open after a protocol error', input);
  }
  // Read again: more may have come while waiting for the close.
  const { replies, malformed } = readRespReplies(wire.bytes);
  const protocolError = replies.some(isProtocolError);
  if (malformed)
    context.finding(kind, `the server sent bytes that are not RESP: ${malformed}`, input);
  for (const reply of replies) {
    if (reply.type === '-' && !KNOWN_CODES.has(errorCode(reply))) {
      context.finding(kind, `an error without a known code: ${reply.line.slice(0, 120)}`, input);
    }
  }
  const at = replies.findIndex(isProtocolError);
  if (at >= 0 && at !== replies.length - 1) {
    context.finding(kind, 'replies after a protocol error', input);
  }
  return { replies, refused, protocolError };
}

/** Sends `input`, waits for the answer to settle, judges it; the label of what happened. */
async function sendAndJudge(
  context: AttackContext,
  kind: string,
  input: Buffer,
  rng: Rng,
): Promise<string> {
  return withWire(await open(context), async (wire) => {
    await sendSplit(wire, input, rng);
    await wire.settle(150, 3000);
    const judged = await judge(context, kind, wire, input);
    if (judged.refused) return 'refused';
    if (judged.protocolError) return 'protocol-error';
    if (wire.closed) return 'closed';
    return judged.replies.length > 0 ? 'replies' : 'waiting';
  });
}

/** Writes `input` whole, or (half the time) in random pieces with short gaps between some. */
async function sendSplit(wire: Wire, input: Buffer, rng: Rng, always = false): Promise<void> {
  if (!always && rng.chance(0.5)) {
    await wire.write(input);
    return;
  }
  const cuts = Array.from({ length: rng.size(Math.min(64, input.length)) }, () =>
    rng.int(1, Math.max(1, input.length - 1)),
  ).sort((a, b) => a - b);
  let at = 0;
  for (const cut of [...cuts, input.length]) {
    if (cut <= at) continue;
    if (!(await wire.write(input.subarray(at, cut)))) return;
    at = cut;
    if (rng.chance(0.3)) await new Promise((resolve) => setTimeout(resolve, rng.int(0, 5)));
  }
}

/**
 * Sends `input`, which must end in a protocol error, and checks that it does and that the
 * server closes the connection. A close with no reply is accepted: the server closes after its
 * error, and the rest of a long input then meets a reset that can discard the reply in flight.
 */
async function expectProtocolError(
  context: AttackContext,
  kind: string,
  input: Buffer,
  rng: Rng,
): Promise<string> {
  return withWire(await open(context), async (wire) => {
    await sendSplit(wire, input, rng);
    await wire.until(
      () => readRespReplies(wire.bytes).replies.some(isProtocolError) || wire.closed,
      ANSWER_MS,
    );
    const judged = await judge(context, kind, wire, input);
    if (judged.refused) return 'refused';
    if (judged.protocolError) return 'protocol-error';
    if (wire.closed) return 'closed-without-reply';
    context.finding(kind, `no protocol error within ${ANSWER_MS} ms`, input);
    return 'no-answer';
  });
}

/**
 * Sends a pipeline and waits for `count` replies; false (with a finding) when they do not
 * come. Null when the server refused the connection (maxClients).
 */
async function pipeline(
  context: AttackContext,
  kind: string,
  wire: Wire,
  input: Buffer,
  count: number,
  rng: Rng,
): Promise<RespReply[] | null> {
  await sendSplit(wire, input, rng);
  const complete = () => {
    const { replies } = readRespReplies(wire.bytes);
    return replies.length >= count || isMaxClients(replies[0]);
  };
  const arrived = await wire.until(complete, ANSWER_MS);
  const judged = await judge(context, kind, wire, input);
  if (judged.refused) return null;
  if (!arrived) {
    context.finding(
      kind,
      `${judged.replies.length} of ${count} replies within ${ANSWER_MS} ms${wire.closed ? ' (closed)' : ''}`,
      input,
    );
  }
  return judged.replies;
}

function isKnownCommand(name: Buffer): boolean {
  const upper = name.toString('latin1').toUpperCase();
  return COMMAND_TABLE.has(upper) || CONNECTION_COMMANDS.has(upper);
}

/** Random bytes, sometimes dressed as the start of a RESP frame. */
const randomBytes: Attack = {
  kind: 'resp-random-bytes',
  weight: 3,
  run: (context, rng) => {
    const body = rng.bytes(rng.size(4096) + 1);
    const prefix = rng.pick(['', '', '*', '$', '*1\r\n', '*2\r\n$', '+', ':']);
    return sendAndJudge(
      context,
      'resp-random-bytes',
      Buffer.concat([Buffer.from(prefix), body]),
      rng,
    );
  },
};

/** A valid pipeline with a few bytes flipped, inserted, deleted, duplicated or cut. */
const mutatedFrame: Attack = {
  kind: 'resp-mutated-frame',
  weight: 4,
  run: (context, rng) => {
    let bytes: Buffer = Buffer.concat(
      Array.from({ length: rng.int(1, 6) }, () => encodeCommand(validCommand(rng))),
    );
    for (let i = rng.int(1, 4); i > 0 && bytes.length > 0; i--) bytes = mutate(bytes, rng);
    return sendAndJudge(context, 'resp-mutated-frame', bytes, rng);
  },
};

const LENGTH_LINE = /([*$])(-?\d+)\r\n/g;

function mutate(bytes: Buffer, rng: Rng): Buffer {
  const at = rng.int(0, bytes.length - 1);
  switch (rng.int(0, 5)) {
    case 0: {
      const copy = Buffer.from(bytes);
      copy[at] = rng.uint32() & 0xff;
      return copy;
    }
    case 1:
      return Buffer.concat([bytes.subarray(0, at), rng.bytes(rng.int(1, 8)), bytes.subarray(at)]);
    case 2:
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + rng.int(1, 8))]);
    case 3:
      return Buffer.concat([bytes, bytes.subarray(at, at + rng.int(1, 64))]);
    case 4:
      return bytes.subarray(0, at);
    default: {
      // Rewrite one length line: off by one, negative, zero, huge, non-canonical.
      const text = bytes.toString('latin1');
      const lines = [...text.matchAll(LENGTH_LINE)];
      if (lines.length === 0) return bytes;
      const line = rng.pick(lines);
      const n = Number(line[2]);
      const value = rng.pick([
        String(n + 1),
        String(n - 1),
        '-1',
        '-2',
        '0',
        '-0',
        `0${n}`,
        `+${n}`,
        ` ${n}`,
        '99999999999',
        '9'.repeat(rng.int(19, 30)),
      ]);
      return Buffer.from(
        text.slice(0, line.index) +
          line[1]! +
          value +
          '\r\n' +
          text.slice(line.index + line[0].length),
        'latin1',
      );
    }
  }
}

/** Counts and lengths that are huge, negative, non-canonical or too long to read. */
const hugeLength: Attack = {
  kind: 'resp-huge-length',
  weight: 2,
  run: (context, rng) => {
    const { maxArgs, maxBulkLength } = context.limits;
    const odd = () =>
      rng.pick(['+1', '1x', ' 1', '01', '-0', '0x10', '1.5', '\xef\xbc\x91', '1\r\r', '']);
    const digits = () => '9'.repeat(rng.int(21, 40));
    const make = rng.pick<() => string>([
      () => `*${rng.pick([maxArgs + 1, maxArgs + rng.int(2, 1e6), 2 ** 31, 2 ** 53])}\r\n`,
      () => `*-${rng.int(2, 1e9)}\r\n`,
      () => `*1\r\n$${rng.pick([maxBulkLength + 1, 2 ** 32, 2 ** 53, 1e15])}\r\n`,
      () => `*1\r\n$-${rng.int(2, 1e9)}\r\n`,
      () => `*${digits()}\r\n`,
      () => `*1\r\n$${digits()}\r\n`,
      () => `*${odd()}\r\n`,
      () => `*2\r\n$4\r\nPING\r\n$${odd()}\r\n`,
    ]);
    const prefix = rng.chance(0.3) ? encodeCommand(['PING']) : Buffer.alloc(0);
    const input = Buffer.concat([prefix, Buffer.from(make(), 'latin1')]);
    return expectProtocolError(context, 'resp-huge-length', input, rng);
  },
};

/**
 * One request over maxQueryBuffer made of arguments each within maxBulkLength: refused on the
 * length line that passes the limit, before its payload arrives.
 */
const queryBuffer: Attack = {
  kind: 'resp-query-buffer',
  weight: 1,
  run: (context, rng) => {
    const { maxBulkLength, maxQueryBuffer } = context.limits;
    const half = Math.min(maxBulkLength, Math.ceil(maxQueryBuffer / 2));
    const input = Buffer.concat([
      Buffer.from(`*3\r\n$3\r\nSET\r\n$${half}\r\n`),
      Buffer.alloc(half, 'x'),
      Buffer.from(`\r\n$${half}\r\n`),
    ]);
    return expectProtocolError(context, 'resp-query-buffer', input, rng);
  },
};

/** Arrays in arrays: requests are flat, so the first nested '*' is a protocol error. */
const deepNesting: Attack = {
  kind: 'resp-deep-nesting',
  weight: 1,
  run: (context, rng) => {
    const depth = rng.size(100_000) + 2;
    const open = rng.pick(['*1\r\n', '*2\r\n', '*3\r\n', '%1\r\n', '>1\r\n']);
    const input = Buffer.from(
      '*1\r\n' + open.repeat(depth - 1) + '$4\r\nPING\r\n'.repeat(rng.int(1, 3)),
    );
    return expectProtocolError(context, 'resp-deep-nesting', input, rng);
  },
};

/** Inline commands past the length or argument limits, with bad quotes, or an HTTP request. */
const inlineAbuse: Attack = {
  kind: 'resp-inline-abuse',
  weight: 1,
  run: (context, rng) => {
    const { maxInline, maxArgs } = context.limits;
    const input = rng.pick<() => string>([
      () => 'A'.repeat(maxInline + rng.int(2, 4096)),
      () => 'PING ' + 'a'.repeat(maxInline + rng.int(0, 100)) + '\r\n',
      () => Array.from({ length: maxArgs + rng.int(1, 50) }, () => 'a').join(' ') + '\r\n',
      () => rng.pick(['SET "abc\r\n', "GET 'a\r\n", 'PING "a"b\r\n', 'PING "\\x4\r\n']),
      () => 'POST / HTTP/1.1\r\nHost: localhost\r\n\r\n',
      () => 'GET / HTTP/1.1\r\nHost: localhost\r\n\r\n',
    ])();
    return expectProtocolError(context, 'resp-inline-abuse', Buffer.from(input, 'latin1'), rng);
  },
};

/** Names that are no command, multibulk or inline; the next command must still be answered. */
const unknownCommand: Attack = {
  kind: 'resp-unknown-command',
  weight: 2,
  run: async (context, rng) => {
    let name: Buffer;
    do {
      name = rng.chance(0.5)
        ? Buffer.from(
            Array.from({ length: rng.int(1, 40) }, () =>
              rng.pick([...'ABCDEFGHIJKLMNOPQRSTUVWXYZ']),
            ).join(''),
          )
        : rng.bytes(rng.int(0, 40));
    } while (isKnownCommand(name));
    const inline = rng.chance(0.3) && /^[A-Z]+$/.test(name.toString('latin1'));
    const args = Array.from({ length: rng.int(0, 4) }, () => `a${rng.int(0, 99)}`);
    const input = inline
      ? Buffer.from(`${[name.toString('latin1'), ...args].join(' ')}\r\nPING\r\n`)
      : Buffer.concat([encodeCommand([name, ...args]), encodeCommand(['PING'])]);
    return withWire(await open(context), async (wire) => {
      const replies = await pipeline(context, 'resp-unknown-command', wire, input, 2, rng);
      if (replies === null) return 'refused';
      const [first, second] = replies;
      if (first && !(first.type === '-' && first.line.startsWith('ERR unknown command'))) {
        context.finding('resp-unknown-command', `answered ${first.type}${first.line}`, input);
      }
      if (second && !(second.type === '+' && second.line === 'PONG')) {
        context.finding(
          'resp-unknown-command',
          `the next PING got ${second.type}${second.line}`,
          input,
        );
      }
      return 'err-unknown-command';
    });
  },
};

/** Known commands with the wrong number or kind of arguments, each with the code it must get. */
const badArguments: Attack = {
  kind: 'resp-bad-arguments',
  weight: 3,
  run: async (context, rng) => {
    const { maxValueBytes, maxDataBytes, maxVars } = context.limits;
    const s = sid(rng);
    const notInt = () =>
      rng.pick(['abc', '1.5', '', '-', '99999999999999999999999', '0x1', ' 1', '1e3']);
    // [arguments, codes allowed]; a case naming `s` may also meet NOSESSION (another attacker
    // may have destroyed it in between).
    const cases: Array<[Args, string[]]> = [
      [['GET'], ['ERR']],
      [['GET', s], ['ERR']],
      [['SET', s, 'a'], ['ERR']],
      [['PING', 'a', 'b'], ['ERR']],
      [['GETALL'], ['ERR']],
      [['EMPTY', 'x'], ['ERR']],
      [['GC', 'x'], ['ERR']],
      [['SUBSCRIBE'], ['ERR']],
      [
        ['INC', s, 'n', notInt()],
        ['NOTINT', 'NOSESSION'],
      ],
      [
        ['TIMEOUT', s, notInt()],
        ['NOTINT', 'NOSESSION'],
      ],
      [
        ['EXPIRE', s, notInt()],
        ['NOTINT', 'NOSESSION'],
      ],
      [
        ['UNLOCK', s, notInt()],
        ['NOTINT', 'NOSESSION'],
      ],
      [['RANDSTR', notInt()], ['NOTINT']],
      [['CREATE', ''], ['BADID']],
      [['CREATE', 'x'.repeat(rng.int(256, 400))], ['BADID']],
      [
        [
          'CREATE',
          `a${String.fromCharCode(rng.pick([0, 9, 10, 13, 32, 34, 44, 59, 92, 127, 200]))}b`,
        ],
        ['BADID'],
      ],
      [['CREATE', s, 'TIMEOUT', '-1'], ['NOTINT']],
      [['CREATE', `${s}x`, 'BOGUS', 'x'], ['ERR']],
      [
        ['RANDSTR', rng.pick(['0', '4097', '-1'])],
        ['ERR', 'NOTINT'],
      ],
      [['UNIQ', rng.pick(['5', '21', '256'])], ['ERR']],
      [
        ['LOCK', s, 'LEASE', '-1'],
        ['ERR', 'NOSESSION'],
      ],
      [
        ['LOCK', s, 'WAIT', '99999999999'],
        ['LIMIT', 'NOSESSION'],
      ],
      [['SET', `fz-none-${rng.int(0, 1e9)}`, 'a', 'b'], ['NOSESSION']],
      [
        ['SET', s, 'big', Buffer.alloc(maxValueBytes + 1, 'x')],
        ['LIMIT', 'NOSESSION'],
      ],
      [['SETDATA', s, Buffer.alloc(maxDataBytes + 1, 'x')], ['LIMIT']],
      [
        ['SET', s, ...Array.from({ length: maxVars + 1 }, (_, i) => [`w${i}`, 'x']).flat()],
        ['LIMIT', 'NOSESSION'],
      ],
      [
        ['CTL', s, 'BOGUS'],
        ['ERR', 'NOSESSION'],
      ],
      [['LIST', 'CURSOR', 'zz'], ['ERR']],
      [['HELLO', rng.pick(['4', '1', 'x'])], ['ERR']],
      [['AUTH', 'x'], ['ERR']],
      [
        ['PLUGIN', s, 'v'],
        ['NOPLUGIN', 'NOSESSION'],
      ],
      [['CALL', 'nofn'], ['NOPLUGIN']],
      [
        ['REGENERATE', s, 'GRACE', '-1'],
        ['ERR', 'NOSESSION'],
      ],
      [['COUNT', 'CLASS'], ['ERR']],
      [['DESTROYUSER', 'u', 'EXCEPT'], ['ERR']],
    ];
    const chosen = Array.from({ length: rng.int(1, 5) }, () => rng.pick(cases));
    const input = Buffer.concat([
      encodeCommand(['CREATE', s]),
      ...chosen.map(([args]) => encodeCommand(args)),
      encodeCommand(['PING']),
    ]);
    return withWire(await open(context), async (wire) => {
      const replies = await pipeline(
        context,
        'resp-bad-arguments',
        wire,
        input,
        chosen.length + 2,
        rng,
      );
      if (replies === null) return 'refused';
      chosen.forEach(([args, codes], i) => {
        const reply = replies[i + 1];
        if (reply && !(reply.type === '-' && codes.includes(errorCode(reply)))) {
          const shown = args.map((arg) => String(arg).slice(0, 20)).join(' ');
          context.finding(
            'resp-bad-arguments',
            `${shown} answered ${reply.type}${reply.line.slice(0, 80)}, not ${codes.join('/')}`,
          );
        }
      });
      const last = replies[chosen.length + 1];
      if (last && last.line !== 'PONG') {
        context.finding('resp-bad-arguments', `the closing PING got ${last.type}${last.line}`);
      }
      return 'errors-with-codes';
    });
  },
};

/** A pipeline cut at random points, some pieces delayed: every PING must echo its own bytes. */
const splitFrames: Attack = {
  kind: 'resp-split-frames',
  weight: 2,
  run: async (context, rng) => {
    const commands: Args[] = Array.from({ length: rng.int(1, 30) }, () =>
      rng.chance(0.6) ? ['PING', token(rng)] : validCommand(rng),
    ).filter((args) => args[0] !== 'HELLO');
    if (commands.length === 0) commands.push(['PING', token(rng)]);
    const input = Buffer.concat(commands.map((args) => encodeCommand(args)));
    return withWire(await open(context), async (wire) => {
      await sendSplit(wire, input, rng, true);
      const complete = () => {
        const { replies } = readRespReplies(wire.bytes);
        return replies.length >= commands.length || isMaxClients(replies[0]);
      };
      const arrived = await wire.until(complete, ANSWER_MS);
      const { replies, refused } = await judge(context, 'resp-split-frames', wire, input);
      if (refused) return 'refused';
      if (!arrived) {
        context.finding(
          'resp-split-frames',
          `${replies.length} of ${commands.length} replies`,
          input,
        );
        return 'no-answer';
      }
      commands.forEach((args, i) => {
        if (args[0] !== 'PING' || args.length !== 2) return;
        if (!replies[i]?.value?.equals(args[1] as Buffer)) {
          context.finding('resp-split-frames', `PING ${i} echoed the wrong bytes`, input);
        }
      });
      return 'echoed';
    });
  },
};

/** One command a byte at a time, tens to hundreds of milliseconds apart. */
const slowBytes: Attack = {
  kind: 'resp-slow-bytes',
  weight: 1,
  run: async (context, rng) => {
    const payload = token(rng);
    const input = encodeCommand(['PING', payload]);
    return withWire(await open(context), async (wire) => {
      for (const byte of input) {
        if (context.stopping() || wire.closed) break;
        await wire.write(Buffer.from([byte]));
        await context.pause(rng.int(10, 300));
      }
      if (context.stopping() && !wire.closed) return 'stopped';
      const arrived = await wire.until(
        () => readRespReplies(wire.bytes).replies.length > 0,
        ANSWER_MS,
      );
      const { replies, refused } = await judge(context, 'resp-slow-bytes', wire, input);
      if (refused) return 'refused';
      if (!arrived || !replies[0]?.value?.equals(payload)) {
        context.finding('resp-slow-bytes', 'a command sent slowly was not echoed', input);
        return 'no-answer';
      }
      return 'echoed';
    });
  },
};

/**
 * Pipelines reads of a big value and never reads the replies: the server must stop reading or
 * cut the client off at maxOutputBuffer, not buffer without bound.
 */
const neverReads: Attack = {
  kind: 'resp-never-reads',
  weight: 1,
  run: async (context, rng) => {
    const s = sid(rng);
    return withWire(await open(context), async (wire) => {
      await wire.write(
        Buffer.concat([
          encodeCommand(['CREATE', s]),
          encodeCommand(['SET', s, 'big', Buffer.alloc(context.limits.maxValueBytes, 'x')]),
        ]),
      );
      wire.socket.pause();
      const batch = Buffer.concat(
        Array.from({ length: 64 }, () => encodeCommand(['GET', s, 'big'])),
      );
      const until = Date.now() + rng.int(500, 3000);
      let stalled = false;
      while (Date.now() < until && !context.stopping() && !wire.closed) {
        if (!(await wire.write(batch, 1000))) {
          stalled = true;
          break;
        }
      }
      wire.socket.resume();
      if (await wire.closedWithin(300)) return 'cut-off';
      return stalled ? 'server-stopped-reading' : 'held';
    });
  },
};

/** Connections opened and dropped: at once, or mid-frame. */
const abandon: Attack = {
  kind: 'resp-abandon',
  weight: 2,
  run: async (context, rng) => {
    return withWire(await open(context), async (wire) => {
      if (rng.chance(0.5)) return 'reset-at-once';
      const frame = encodeCommand(validCommand(rng));
      await wire.write(frame.subarray(0, rng.int(1, Math.max(1, frame.length - 1))));
      await context.pause(rng.int(0, 200));
      return 'reset-mid-frame';
    });
  },
};

/** Half of a maximal bulk argument, held, then a reset: pins its bytes in the server meanwhile. */
const halfPayload: Attack = {
  kind: 'resp-half-payload',
  weight: 1,
  run: async (context, rng) => {
    return withWire(await open(context), async (wire) => {
      const length = context.limits.maxBulkLength;
      await wire.write(`*2\r\n$4\r\nPING\r\n$${length}\r\n`);
      await wire.write(Buffer.alloc(rng.int(1, length / 2), 'y'));
      await context.pause(rng.int(200, 3000));
      return 'reset-mid-payload';
    });
  },
};

/** A connection that sends nothing for seconds, then closes. */
const idle: Attack = {
  kind: 'resp-idle',
  weight: 1,
  run: async (context, rng) => {
    return withWire(await open(context), async (wire) => {
      await context.pause(rng.int(500, 5000));
      wire.socket.end();
      return 'idle-then-closed';
    });
  },
};

/** A subscriber that never reads: events for it pile up until the server cuts it off. */
const deafSubscriber: Attack = {
  kind: 'resp-deaf-subscriber',
  weight: 1,
  run: async (context, rng) => {
    const input = Buffer.concat([
      encodeCommand(['SUBSCRIBE', 'events:updated', 'events:created']),
      encodeCommand(['PSUBSCRIBE', 'events:*']),
    ]);
    return withWire(await open(context), async (wire) => {
      await wire.write(input);
      wire.socket.pause();
      await context.pause(rng.int(1000, 8000));
      wire.socket.resume();
      await wire.settle(100, 1000);
      const { refused } = await judge(context, 'resp-deaf-subscriber', wire, input);
      if (refused) return 'refused';
      return wire.closed ? 'cut-off' : 'held';
    });
  },
};

/**
 * More connections than maxClients at once: each is answered PONG or told "max number of
 * clients reached" and closed, and no more than maxClients are served.
 */
export const maxClientsFlood: Attack = {
  kind: 'resp-max-clients',
  weight: 0,
  run: async (context) => {
    const count = context.limits.maxClients + 20;
    const wires = await Promise.all(Array.from({ length: count }, () => open(context)));
    try {
      const ping = encodeCommand(['PING']);
      const live = wires.filter((wire) => wire !== null);
      await Promise.all(live.map((wire) => wire.write(ping)));
      await Promise.all(
        live.map((wire) =>
          wire.until(() => readRespReplies(wire.bytes).replies.length > 0, ANSWER_MS),
        ),
      );
      let served = 0;
      let refused = 0;
      for (const wire of wires) {
        if (!wire) continue;
        const [reply] = readRespReplies(wire.bytes).replies;
        if (reply?.type === '+' && reply.line === 'PONG') served++;
        else if (isMaxClients(reply)) {
          refused++;
          if (!(await wire.closedWithin(ANSWER_MS))) {
            context.finding('resp-max-clients', 'a refused connection was left open');
          }
        } else if (!wire.closed) {
          context.finding(
            'resp-max-clients',
            `answered ${reply ? reply.type + reply.line : 'nothing'}`,
          );
        }
      }
      if (served > context.limits.maxClients) {
        context.finding('resp-max-clients', `${served} connections served, over maxClients`);
      }
      return refused > 0 ? 'some-refused' : 'none-refused';
    } finally {
      for (const wire of wires) wire?.reset();
    }
  },
};

/** The RESP attacks run back to back by the fast lanes, chosen by weight. */
export const RESP_ATTACKS: readonly Attack[] = [
  randomBytes,
  mutatedFrame,
  hugeLength,
  deepNesting,
  inlineAbuse,
  unknownCommand,
  badArguments,
  splitFrames,
  abandon,
];

/** The RESP attacks that hold a connection for seconds, run by the slow lanes. */
export const RESP_SLOW_ATTACKS: readonly Attack[] = [slowBytes, deafSubscriber, idle];

/** The RESP attacks that pin up to a megabyte or more in the server, run by the heavy lanes. */
export const RESP_HEAVY_ATTACKS: readonly Attack[] = [neverReads, halfPayload, queryBuffer];
