/**
 * Abuse of the HTTP/JSON port, over raw sockets so that anything can be sent. Each answer is
 * judged against docs/http.md: no 5xx, every error status with a body
 * `{"error": {"code", "message"}}` whose code is one of PROTOCOL.md's, or a closed connection.
 */
import fc from 'fast-check';
import type { Attack, AttackContext } from './attack.ts';
import type { Rng } from './rng.ts';
import { badErrorBody, readHttpResponses, Wire, withWire, type HttpAnswer } from './wire.ts';

const ANSWER_MS = 10_000;

const sid = (rng: Rng) => `fz-${rng.int(0, 31)}`;

/** A request as bytes: request line, the headers as given, then the body. */
function request(
  method: string,
  target: string,
  headers: ReadonlyArray<readonly [string, string]>,
  body: Buffer | string = '',
  version = 'HTTP/1.1',
): Buffer {
  const head =
    `${method} ${target} ${version}\r\n` +
    headers.map(([name, value]) => `${name}: ${value}\r\n`).join('') +
    '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body)]);
}

/** A POST of a JSON body with a correct Host and Content-Length. */
function post(
  target: string,
  body: Buffer | string,
  headers: Array<[string, string]> = [],
): Buffer {
  return request(
    'POST',
    target,
    [
      ['Host', '127.0.0.1'],
      ['Content-Type', 'application/json'],
      ['Content-Length', String(Buffer.byteLength(body))],
      ...headers,
    ],
    body,
  );
}

/** A well-formed command as JSON, on the attackers' own sessions; arguments sometimes base64. */
function validCommandJson(rng: Rng): unknown[] {
  const s = sid(rng);
  const arg = (text: string) =>
    rng.chance(0.2) ? { base64: Buffer.from(text, 'latin1').toString('base64') } : text;
  return rng.pick<() => unknown[]>([
    () => ['PING'],
    () => ['PING', arg(`p${rng.int(0, 1e6)}`)],
    () => ['CREATE', s, 'TIMEOUT', String(rng.int(1, 60))],
    () => ['SET', s, `v${rng.int(0, 7)}`, arg(rng.sample(fc.string({ maxLength: 40 })))],
    () => ['GET', s, `v${rng.int(0, 7)}`],
    () => ['INC', s, 'n'],
    () => ['GETALL', s],
    () => ['COUNT'],
  ])();
}

function open(context: AttackContext): Promise<Wire | null> {
  return Wire.open(context.httpPort, context.open);
}

/**
 * The checks every answer must pass, and a label of it: the first status, "+closed" when the
 * server closed the connection, or "closed" with no response at all.
 */
function judge(
  context: AttackContext,
  kind: string,
  wire: Wire,
  input: Buffer,
  allowed?: readonly number[],
): { responses: HttpAnswer[]; label: string } {
  const { responses, malformed } = readHttpResponses(wire.bytes);
  if (malformed)
    context.finding(kind, `the server sent bytes that are not HTTP: ${malformed}`, input);
  for (const answer of responses) {
    if (answer.status >= 500) {
      context.finding(
        kind,
        `status ${answer.status}: ${answer.body.toString('latin1', 0, 120)}`,
        input,
      );
    } else if (answer.status >= 400) {
      const bad = badErrorBody(answer);
      if (bad) context.finding(kind, bad, input);
    }
  }
  const first = responses[0];
  if (allowed && first && !allowed.includes(first.status)) {
    context.finding(kind, `status ${first.status}, not ${allowed.join('/')}`, input);
  }
  const label = first
    ? `${first.status}${wire.closed ? '+closed' : ''}`
    : wire.closed
      ? 'closed'
      : 'waiting';
  return { responses, label };
}

/**
 * Sends `input` and judges what comes back once the answer settles. With `allowed`, the first
 * response must have one of those statuses (or the connection may close unanswered, when
 * `closeAllowed`); a silent open connection then counts as a stall.
 */
async function exchange(
  context: AttackContext,
  kind: string,
  input: Buffer,
  allowed?: readonly number[],
  closeAllowed = true,
): Promise<string> {
  return withWire(await open(context), async (wire) => {
    await wire.write(input);
    if (allowed) {
      await wire.until(() => readHttpResponses(wire.bytes).responses.length > 0, ANSWER_MS);
    }
    await wire.settle(150, 3000);
    const { responses, label } = judge(context, kind, wire, input, allowed);
    if (allowed && responses.length === 0 && !(closeAllowed && wire.closed)) {
      context.finding(kind, `no response within ${ANSWER_MS} ms`, input);
    }
    return label;
  });
}

function mutate(bytes: Buffer, rng: Rng): Buffer {
  const at = rng.int(0, Math.max(0, bytes.length - 1));
  switch (rng.int(0, 3)) {
    case 0: {
      const copy = Buffer.from(bytes);
      if (copy.length > 0) copy[at] = rng.uint32() & 0xff;
      return copy;
    }
    case 1:
      return Buffer.concat([bytes.subarray(0, at), rng.bytes(rng.int(1, 8)), bytes.subarray(at)]);
    case 2:
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + rng.int(1, 8))]);
    default:
      return bytes.subarray(0, at);
  }
}

/** Random bytes, request lines of odd methods, targets and versions, and mutated requests. */
const garbage: Attack = {
  kind: 'http-garbage',
  weight: 2,
  run: (context, rng) => {
    const method = () =>
      rng.pick(['GET', 'POST', 'PUT', 'OPTIONS', 'CONNECT', 'PRI', 'G E T', '', 'get', 'BREW']);
    const target = () =>
      rng.pick([
        '/',
        '/v1/command',
        '*',
        'http://x/healthz',
        '/%',
        '/\x00',
        '//..//',
        '/' + 'a'.repeat(rng.size(12_000)),
      ]);
    const version = () =>
      rng.pick([
        'HTTP/1.1',
        'HTTP/1.0',
        'HTTP/2.0',
        'HTTP/0.9',
        'HTTP/1.1x',
        'http/1.1',
        '',
        'HTTP/1',
      ]);
    const input = rng.pick<() => Buffer>([
      () => rng.bytes(rng.size(4096) + 1),
      () =>
        Buffer.from(`${method()} ${target()} ${version()}\r\nHost: 127.0.0.1\r\n\r\n`, 'latin1'),
      () => mutate(post('/v1/command', JSON.stringify(validCommandJson(rng))), rng),
      () => Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
    ])();
    return exchange(context, 'http-garbage', input);
  },
};

/** Header lines that break the grammar, are too large or too many, or say odd things. */
const badHeaders: Attack = {
  kind: 'http-bad-headers',
  weight: 2,
  run: (context, rng) => {
    const get = (headers: string) => `GET /healthz HTTP/1.1\r\n${headers}\r\n`;
    const ping = '["PING"]';
    const cases: Array<[string, number[]]> = [
      [get(''), [400]],
      [get('Host: 127.0.0.1\r\nBad Header: y\r\n'), [400]],
      [get('Host: 127.0.0.1\r\nX : y\r\n'), [400]],
      [get(`Host: 127.0.0.1\r\nX: a${rng.pick(['\x00', '\x01', '\x0b'])}b\r\n`), [400]],
      [get('Host: 127.0.0.1\r\nX: a\r\n b\r\n'), [400]],
      [get(`Host: 127.0.0.1\r\nX: ${'a'.repeat(rng.int(17_000, 40_000))}\r\n`), [431]],
      [get('Host: 127.0.0.1\r\n' + 'X: a\r\n'.repeat(rng.int(3000, 5000))), [431]],
      ['GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n', [400]],
      [get('Ho\x00st: x\r\n'), [400]],
      [
        get(`Host: 127.0.0.1\r\n${rng.bytes(rng.int(1, 64)).toString('latin1')}\r\n`),
        [200, 400, 431],
      ],
      [get('Host: 127.0.0.1\r\nHost: y\r\n'), [200, 400]],
      // A Host name the server was not given: refused (DNS rebinding), /healthz aside.
      [
        `GET /v1/commands HTTP/1.1\r\nHost: ${rng.pick(['evil.example', 'x', 'localhost.evil', ''])}\r\n\r\n`,
        [403],
      ],
      ['GET /v1/commands HTTP/1.0\r\n\r\n', [403]],
      [
        `GET /v1/commands HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${rng.pick(['Basic !!!', 'Bearer', 'x', 'Basic ' + 'A'.repeat(5000)])}\r\n\r\n`,
        [200],
      ],
      [
        `POST /v1/command HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: ${rng.pick(['null', 'http://evil', '::', 'http://x:99'])}\r\nContent-Length: 8\r\n\r\n${ping}`,
        [403],
      ],
      [
        `POST /v1/command HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: ${rng.pick(['foo', '200-ok', '100-continuex'])}\r\nContent-Length: 8\r\n\r\n${ping}`,
        [417],
      ],
    ];
    const [head, allowed] = rng.pick(cases);
    return exchange(context, 'http-bad-headers', Buffer.from(head, 'latin1'), allowed);
  },
};

/** Content-Length that is malformed, doubled, contradicted by chunking, too big, or wrong. */
const badLength: Attack = {
  kind: 'http-bad-length',
  weight: 2,
  run: async (context, rng) => {
    const ping = '["PING"]';
    const head = (headers: string) =>
      `POST /v1/command HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`;
    const { maxBodyBytes } = context.limits;
    const variant = rng.int(0, 6);
    if (variant === 5) {
      // Longer than sent, then the client half-closes: the body is cut short.
      return withWire(await open(context), async (wire) => {
        const input = Buffer.from(head(`Content-Length: ${rng.int(9, 10_000)}\r\n`) + ping);
        await wire.write(input);
        wire.socket.end();
        await wire.settle(150, ANSWER_MS);
        return judge(context, 'http-bad-length', wire, input, [400]).label;
      });
    }
    const cases: Array<[string, number[]]> = [
      [
        head(
          `Content-Length: ${rng.pick(['-1', 'abc', '1.5', '0x8', '8 8', '', '+8', '9'.repeat(25)])}\r\n`,
        ) + ping,
        [400],
      ],
      [head('Content-Length: 8\r\nContent-Length: 9\r\n') + ping, [400]],
      [head('Content-Length: 8\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n', [400]],
      // Over maxBodyBytes: refused before a byte of the body is read, and the connection closed.
      [
        head(`Content-Length: ${rng.pick([maxBodyBytes + 1, 2 ** 40, 2 ** 53 - 1])}\r\n`) + ping,
        [413],
      ],
      // Shorter than sent: the rest is read as the next request.
      [head('Content-Length: 3\r\n') + ping, [400]],
    ];
    const [input, allowed] = cases[Math.min(variant, cases.length - 1)]!;
    return exchange(context, 'http-bad-length', Buffer.from(input, 'latin1'), allowed);
  },
};

/** Chunked bodies with bad sizes, missing CRLF, odd extensions and trailers, odd codings. */
const chunkedGarbage: Attack = {
  kind: 'http-chunked-garbage',
  weight: 2,
  run: (context, rng) => {
    const coding = rng.pick([
      'chunked',
      'chunked',
      'gzip',
      'gzip, chunked',
      'chunked, gzip',
      'identity',
      'CHUNKED',
      ' chunked',
    ]);
    const body = JSON.stringify(validCommandJson(rng));
    let chunks = '';
    for (let i = rng.int(0, 4); i > 0; i--) {
      chunks += rng.pick([
        () => `${body.length.toString(16)}\r\n${body}\r\n`,
        () =>
          `${rng.pick(['zz', '-1', '', 'ffffffffffffffffff', '8;' + 'e'.repeat(rng.size(9000)), ' 8', '8 '])}\r\n${body}\r\n`,
        () => `${(body.length + rng.int(-3, 3)).toString(16)}\r\n${body}\r\n`,
        () => `${body.length.toString(16)}\r\n${body}`,
      ])();
    }
    chunks += rng.pick([
      '0\r\n\r\n',
      '0\r\nX: y\r\n\r\n',
      `0\r\n${rng.bytes(20).toString('latin1')}\r\n\r\n`,
      '',
    ]);
    const input = Buffer.from(
      `POST /v1/command HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: ${coding}\r\n\r\n${chunks}`,
      'latin1',
    );
    return exchange(context, 'http-chunked-garbage', input);
  },
};

/** Bodies that are not JSON, not UTF-8, random JSON, or mutated and cut commands. */
const badJson: Attack = {
  kind: 'http-bad-json',
  weight: 3,
  run: (context, rng) => {
    const target = rng.pick([
      '/v1/command',
      '/v1/command',
      `/v1/command/${rng.pick(['ping', 'get', 'set', 'count'])}`,
      '/admin/api/session',
    ]);
    const valid = JSON.stringify(
      target.startsWith('/v1/command/')
        ? { args: validCommandJson(rng).slice(1) }
        : validCommandJson(rng),
    );
    const body = rng.pick<() => Buffer>([
      () => Buffer.from(rng.sample(fc.json({ maxDepth: 4 }))),
      () => mutate(Buffer.from(valid), rng),
      () => mutate(mutate(Buffer.from(valid), rng), rng),
      () => Buffer.from(valid.slice(0, rng.int(0, valid.length - 1))),
      () => rng.bytes(rng.size(2048) + 1),
      () => Buffer.from(`\ufeff${valid}`),
      () => Buffer.from(rng.sample(fc.string({ unit: 'binary', maxLength: 200 })), 'utf8'),
    ])();
    return exchange(context, 'http-bad-json', post(target, body), [200, 400, 404, 413]);
  },
};

/**
 * Deeply nested bodies and bodies of very many tiny values: refused before parsing (400, 413)
 * rather than parsed into hundreds of megabytes of heap.
 */
const deepJson: Attack = {
  kind: 'http-deep-json',
  weight: 1,
  run: (context, rng) => {
    // Up to ~400 KB here; the heavy lanes send 16 MiB of the same (http-huge-body).
    const depth = rng.size(200_000) + 9;
    const many = rng.int(131_073, 140_000);
    const body = rng.pick<() => string>([
      () => '['.repeat(depth) + ']'.repeat(depth),
      () => '['.repeat(depth),
      () => '{"args":'.repeat(Math.ceil(depth / 8)) + '[]' + '}'.repeat(Math.ceil(depth / 8)),
      () => '[' + '[],'.repeat(many) + '[]]',
      () => '["PING"' + ',"a"'.repeat(many) + ']',
      () => '[[[[[[[["PING"]]]]]]]]',
    ])();
    return exchange(context, 'http-deep-json', post('/v1/command', body), [400, 413]);
  },
};

let filler: Buffer | undefined;

/**
 * Bodies up to and past maxBodyBytes, declared or streamed, and bodies of maximal size made of
 * brackets or empty arrays (refused by shape, not parsed).
 */
const hugeBody: Attack = {
  kind: 'http-huge-body',
  weight: 1,
  run: async (context, rng) => {
    const { maxBodyBytes } = context.limits;
    filler ??= Buffer.alloc(maxBodyBytes, 'x');
    const size = rng.int(1024 * 1024, maxBodyBytes - 64);
    const variant = rng.int(0, 5);
    if (variant === 0) {
      const body = Buffer.concat([
        Buffer.from('["PING","'),
        filler.subarray(0, size),
        Buffer.from('"]'),
      ]);
      return exchange(context, 'http-huge-body', post('/v1/command', body), [200], false);
    }
    if (variant === 1) {
      const body = Buffer.concat([
        Buffer.from(`["SET","${sid(rng)}","v","`),
        filler.subarray(0, size),
        Buffer.from('"]'),
      ]);
      return exchange(context, 'http-huge-body', post('/v1/command', body), [404, 413], false);
    }
    if (variant === 2) {
      const body = '['.repeat(size / 2) + ']'.repeat(size / 2);
      return exchange(context, 'http-huge-body', post('/v1/command', body), [400], false);
    }
    if (variant === 3) {
      const body = '[' + '[],'.repeat(size / 3) + '[]]';
      return exchange(context, 'http-huge-body', post('/v1/command', body), [413], false);
    }
    const wire = await open(context);
    if (!wire) return 'connect-failed';
    const head =
      variant === 4
        ? `POST /v1/command HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${maxBodyBytes + rng.int(1, 1e9)}\r\n\r\n`
        : 'POST /v1/command HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n';
    const input = Buffer.from(head);
    try {
      await wire.write(input);
      // Stream until the server refuses; it must, and close, before much past the limit.
      const piece = 256 * 1024;
      for (let sent = 0; sent <= maxBodyBytes + 4 * piece && !wire.closed; sent += piece) {
        if (readHttpResponses(wire.bytes).responses.length > 0) break;
        const data = filler.subarray(0, piece);
        const ok = await wire.write(
          variant === 4
            ? data
            : Buffer.concat([Buffer.from(`${piece.toString(16)}\r\n`), data, Buffer.from('\r\n')]),
          2000,
        );
        if (!ok) break;
      }
      await wire.until(() => readHttpResponses(wire.bytes).responses.length > 0, ANSWER_MS);
      const { responses, label } = judge(context, 'http-huge-body', wire, input, [413]);
      if (responses.length === 0 && !wire.closed) {
        context.finding(
          'http-huge-body',
          'a body past maxBodyBytes was neither refused nor cut',
          input,
        );
      }
      return label;
    } finally {
      wire.reset();
    }
  },
};

/** Valid commands under content types other than JSON, or none: the body decides. */
const contentTypes: Attack = {
  kind: 'http-content-type',
  weight: 1,
  run: (context, rng) => {
    const body = rng.chance(0.8) ? JSON.stringify(validCommandJson(rng)) : 'a=b&c=d';
    const type = rng.pick([
      'text/plain',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      'application/json; charset=latin1',
      'application/octet-stream',
      '',
    ]);
    const input = request(
      'POST',
      '/v1/command',
      [
        ['Host', '127.0.0.1'],
        ...(type === '' ? [] : [['Content-Type', type] as const]),
        ['Content-Length', String(Buffer.byteLength(body))],
      ],
      body,
    );
    return exchange(context, 'http-content-type', input, [200, 400, 404]);
  },
};

/** Routes that do not exist, methods a route does not take, odd and long targets. */
const routes: Attack = {
  kind: 'http-routes',
  weight: 2,
  run: (context, rng) => {
    const method = rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']);
    const letters = () =>
      Array.from({ length: rng.int(1, 40) }, () =>
        rng.pick([...'abcdefghijklmnopqrstuvwxyz']),
      ).join('');
    const target = rng.pick<() => string>([
      () => '/',
      () => '/v1',
      () => '/v1/command/',
      () => `/v1/commands/${letters()}`,
      () => '/healthz/',
      () => '/HEALTHZ',
      () => `/v1/command/${letters()}`,
      () => '/v1/command/get%00',
      () => '/v1/command/%C5%BFet',
      () => '/admin/api/stats?since=' + rng.pick(['-1', 'x', '9'.repeat(20), '1e3']),
      () => '/admin/api/stats',
      () => '/metrics?x',
      () => '/%2e%2e/%2e%2e/etc/passwd',
      () => '/' + 'a'.repeat(rng.size(12_000)),
      () => `/v1/events?channels=${rng.pick(['', ',,,', '%FF', 'a'.repeat(2000)])}`,
      () =>
        `/v1/events?${Array.from({ length: rng.int(90, 120) }, (_, i) => `pattern=p${i}`).join('&')}`,
      () => `/${letters()}?${letters()}=${letters()}`,
    ])();
    const body = method === 'POST' || method === 'PUT' ? '["PING"]' : '';
    const input = request(
      method,
      target,
      [['Host', '127.0.0.1'], ...(body ? [['Content-Length', String(body.length)] as const] : [])],
      body,
    );
    return exchange(context, 'http-routes', input, [200, 400, 404, 405, 413, 431]);
  },
};

/** Arguments and names the contract refuses with 400 ERR: types, surrogates, base64, shapes. */
const badValues: Attack = {
  kind: 'http-bad-values',
  weight: 2,
  run: (context, rng) => {
    const [target, body] = rng.pick<[string, string]>([
      ['/v1/command', '["SET","s",1,2]'],
      ['/v1/command', '["GET",null]'],
      ['/v1/command', '[true]'],
      ['/v1/command', '["PING",["a"]]'],
      ['/v1/command', '["PING",{"base64":"abc"}]'],
      ['/v1/command', '["PING",{"base64":"YQ"}]'],
      ['/v1/command', '["PING",{"base64":"YQ==","x":1}]'],
      ['/v1/command', '["PING","\\ud800"]'],
      ['/v1/command', '["\u017fet","a"]'],
      ['/v1/command', `["${'A'.repeat(rng.int(33, 200))}"]`],
      [
        '/v1/command',
        `["${rng.pick(['AUTH', 'HELLO', 'QUIT', 'RESET', 'SUBSCRIBE', 'PSUBSCRIBE'])}","x"]`,
      ],
      ['/v1/command', rng.pick(['[]', '"x"', 'null', '{}', '1'])],
      [
        '/v1/command/get',
        rng.pick(['{"args":"x"}', '{"arg":[]}', '{"args":[],"x":1}', '[]', 'null', '{"args":[1]}']),
      ],
      ['/admin/api/session', rng.pick(['{"id":5}', '{}', '{"id":"x","y":1}', '[]'])],
    ]);
    return exchange(context, 'http-bad-values', post(target, body), [400]);
  },
};

/** Pipelined requests whose responses are never read: the server must stop reading. */
const neverReads: Attack = {
  kind: 'http-never-reads',
  weight: 1,
  run: async (context, rng) => {
    const s = sid(rng);
    return withWire(await open(context), async (wire) => {
      const big = 'x'.repeat(context.limits.maxValueBytes);
      await wire.write(
        Buffer.concat([
          post('/v1/command', JSON.stringify(['CREATE', s])),
          post('/v1/command', JSON.stringify(['SET', s, 'big', big])),
        ]),
      );
      wire.socket.pause();
      const get = post('/v1/command', JSON.stringify(['GET', s, 'big']));
      const batch = Buffer.concat(Array.from({ length: 64 }, () => get));
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

/** Connections dropped at once, mid-headers or mid-body. */
const abandon: Attack = {
  kind: 'http-abandon',
  weight: 1,
  run: async (context, rng) => {
    return withWire(await open(context), async (wire) => {
      const full = post('/v1/command', JSON.stringify(validCommandJson(rng)));
      const variant = rng.int(0, 2);
      if (variant === 1) await wire.write(full.subarray(0, rng.int(1, full.indexOf('\r\n\r\n'))));
      if (variant === 2) {
        await wire.write(
          request(
            'POST',
            '/v1/command',
            [
              ['Host', '127.0.0.1'],
              ['Content-Length', '1000'],
            ],
            '["PI',
          ),
        );
      }
      await context.pause(rng.int(0, 500));
      return ['reset-at-once', 'reset-mid-headers', 'reset-mid-body'][variant]!;
    });
  },
};

/** Headers a byte at a time, up to a second apart: cut off by the 10 s headers timeout. */
const slowloris: Attack = {
  kind: 'http-slowloris',
  weight: 1,
  run: (context, rng) =>
    trickle(
      context,
      'http-slowloris',
      Buffer.from(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(200)}\r\n\r\n`),
      () => rng.int(200, 1500),
    ),
};

/** A body a byte at a time: cut off by the 60 s request timeout, if the run lasts. */
const slowBody: Attack = {
  kind: 'http-slow-body',
  weight: 1,
  run: (context, rng) => {
    const body = JSON.stringify(['PING', 'x'.repeat(500)]);
    return trickle(
      context,
      'http-slow-body',
      post('/v1/command', body),
      () => rng.int(100, 1000),
      body.length,
    );
  },
};

/**
 * Sends `input` whole but for its last `slowTail` bytes, then those a byte at a time, until all
 * is sent, the server closes, or the run ends.
 */
async function trickle(
  context: AttackContext,
  kind: string,
  input: Buffer,
  gap: () => number,
  slowTail = input.length,
): Promise<string> {
  return withWire(await open(context), async (wire) => {
    const fast = input.length - slowTail;
    if (fast > 0) await wire.write(input.subarray(0, fast));
    for (let i = fast; i < input.length; i++) {
      if (context.stopping() || wire.closed) break;
      await wire.write(input.subarray(i, i + 1));
      await context.pause(gap());
    }
    if (!wire.closed && !context.stopping()) await wire.settle(150, ANSWER_MS);
    const { responses, label } = judge(context, kind, wire, input, [200, 408]);
    if (responses.length === 0 && !wire.closed) return 'stopped';
    return label;
  });
}

/** An event stream that is never read, held for seconds. */
const deafEvents: Attack = {
  kind: 'http-deaf-events',
  weight: 1,
  run: async (context, rng) => {
    const wire = await open(context);
    if (!wire) return 'connect-failed';
    const input = request('GET', '/v1/events?pattern=events:*&channels=events:updated', [
      ['Host', '127.0.0.1'],
    ]);
    try {
      await wire.write(input);
      wire.socket.pause();
      await context.pause(rng.int(1000, 8000));
      wire.socket.resume();
      await wire.settle(100, 1000);
      return judge(context, 'http-deaf-events', wire, input, [200]).label;
    } finally {
      wire.reset();
    }
  },
};

/** The HTTP attacks run back to back by the fast lanes, chosen by weight. */
export const HTTP_ATTACKS: readonly Attack[] = [
  garbage,
  badHeaders,
  badLength,
  chunkedGarbage,
  badJson,
  deepJson,
  contentTypes,
  routes,
  badValues,
  abandon,
];

/** The HTTP attacks that hold a connection for seconds, run by the slow lanes. */
export const HTTP_SLOW_ATTACKS: readonly Attack[] = [slowloris, slowBody, deafEvents];

/** The HTTP attacks that make the server hold megabytes, run by the heavy lanes. */
export const HTTP_HEAVY_ATTACKS: readonly Attack[] = [hugeBody, neverReads];
