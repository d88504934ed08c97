/**
 * Hostile requests over real sockets (issue 6): Cookie headers of any bytes, oversized headers,
 * ids with forbidden bytes in every carrier, tampered signatures, made-up ids, hostile Host
 * headers and request targets. Requests are written byte by byte through node:net, because a
 * client library would refuse or clean up what an attacker can send. Both backings.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createSessions } from '../manager.ts';
import { Signer } from '../signing.ts';
import { BACKINGS, listen, useBacking, type Backing, type Route } from '../test-support.ts';
import { withSessions } from './index.ts';

const KEY_A = 'a'.repeat(32);
/** RFC 6265 §4.1.1 cookie-octets: the only bytes an id may have. */
const OCTETS = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i)).filter(
  (c) => !'",;\\'.includes(c),
);
const octet = fc.constantFrom(...OCTETS);
const wellFormedId = fc.string({ unit: octet, minLength: 1, maxLength: 255 });
/** Bytes node:http refuses in a header value (RFC 9110 §5.5: CTLs but HTAB): it answers 400. */
// eslint-disable-next-line no-control-regex -- control bytes are what it looks for
const REFUSED = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Any byte but CR and LF, which would end the header line rather than sit inside it. */
const anyByte = fc
  .integer({ min: 0, max: 255 })
  .map((b) => (b === 0x0d || b === 0x0a ? 0x20 : b))
  .map((b) => String.fromCharCode(b));
/** Fresh ids this server makes: 32 alphanumerics, signed or not. */
const FRESH = /^[A-Za-z0-9]{32}$/;
const FRESH_SIGNED = /^[A-Za-z0-9]{32}\.[\w-]{43}$/;

interface RawResponse {
  status: number;
  headers: Map<string, string[]>;
  body: string;
}

/**
 * One request written as raw bytes (each string character is one byte, latin1), on its own
 * connection. Status 0 when the server closed the connection without an answer.
 */
/** What `send` writes: the request target, the Host header (null for none), other headers. */
interface RawRequest {
  target?: string;
  host?: string | null;
  headers?: Array<[string, string]>;
}

async function send(
  port: number,
  { target = '/', host = '127.0.0.1', headers = [] }: RawRequest,
): Promise<RawResponse> {
  const lines = [`GET ${target} HTTP/1.1`];
  if (host !== null) lines.push(`Host: ${host}`);
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  lines.push('Connection: close', '', '');
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  // The server may answer 400 or 431 and close before reading everything we wrote.
  socket.on('error', () => undefined);
  // A guard against a hung test, not a timing assertion: the server closes after its answer.
  socket.setTimeout(20_000, () => socket.destroy());
  // No half-close: node:http would take the client's FIN for an abort and drop the response.
  socket.write(Buffer.from(lines.join('\r\n'), 'latin1'));
  await once(socket, 'close');
  const text = Buffer.concat(chunks).toString('latin1');
  const split = text.indexOf('\r\n\r\n');
  const [statusLine = '', ...headerLines] = text
    .slice(0, split < 0 ? text.length : split)
    .split('\r\n');
  const parsed = new Map<string, string[]>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    parsed.set(name, [...(parsed.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0),
    headers: parsed,
    body: Buffer.from(split < 0 ? '' : text.slice(split + 4), 'latin1').toString('utf8'),
  };
}

/** The value of the one Set-Cookie line a response may have, or null without one. */
function setCookieValue(response: RawResponse): string | null {
  const lines = response.headers.get('set-cookie') ?? [];
  assert.ok(lines.length <= 1, 'at most one Set-Cookie line');
  if (lines.length === 0) return null;
  const match = /^sessiond=([^;]*); Path=\/; /.exec(lines[0]!);
  assert.ok(match, `a well-formed Set-Cookie line: ${JSON.stringify(lines[0])}`);
  return match[1]!;
}

/** Reads, or starts, a session: `owner` says whose it is. */
const ROUTES: Record<string, Route> = {
  '/login': (session) => {
    session.set('owner', 'victim');
    return 'ok';
  },
  '/probe': (session) => {
    const seen = session.get('owner') ?? null;
    if (seen === null) session.set('owner', 'fresh');
    return { seen };
  },
  '/write': (session) => {
    session.set('x', 1);
    return { id: session.id, next: session.url('/next'), field: session.hiddenField() };
  },
};

for (const make of BACKINGS) {
  describe(`hostile requests over real sockets (${make.name})`, () => {
    const context = useBacking(make);

    /** A signed-cookie app with a victim logged in; `probe` sends a Cookie header as raw bytes. */
    async function victimApp(className: string) {
      const { server } = await context.app({ className, keys: [KEY_A] }, ROUTES);
      const login = await send(server.port, { target: '/login' });
      const token = setCookieValue(login)!;
      assert.match(token, FRESH_SIGNED);
      const probe = (cookie: string) =>
        send(server.port, { target: '/probe', headers: [['Cookie', cookie]] });
      const victimStillServed = async () => {
        const again = await probe(`sessiond=${token}`);
        assert.equal(again.status, 200);
        assert.deepEqual(JSON.parse(again.body), { seen: 'victim' });
        assert.equal(setCookieValue(again), null, 'an unchanged session sends no cookie');
      };
      return { server, token, id: token.split('.')[0]!, probe, victimStillServed };
    }

    /** What a response to /probe may be; returns whose session answered. */
    async function checkProbe(response: RawResponse, cookie: string, victimToken: string) {
      // Node's parser refuses oversized headers (431) and control bytes (400); nothing else fails.
      if (cookie.length > 16_000 && response.status === 431) return;
      if (REFUSED.test(cookie)) return assert.equal(response.status, 400);
      assert.equal(response.status, 200, JSON.stringify(cookie.slice(0, 80)));
      const { seen } = JSON.parse(response.body) as { seen: string | null };
      // Only the victim's exact token opens the victim's session.
      if (seen !== null) assert.ok(cookie.includes(victimToken), 'resolved without the token');
      const value = setCookieValue(response);
      if (value === null || value === '') return;
      // A Set-Cookie carries a token this server made, never bytes from the request.
      assert.match(value, FRESH_SIGNED);
      assert.ok(!cookie.includes(value));
      assert.equal(await context.backing.engine.ctl(value.split('.')[0]!, 'EXIST'), 1);
    }

    it('any Cookie header bytes: no 500, the real session or a fresh one, no echo, and the next request is served', async () => {
      const app = await victimApp('raw-cookie');
      const piece = fc.oneof(
        {
          weight: 4,
          arbitrary: fc.constantFrom(
            'sessiond=',
            ' sessiond = ',
            'sessiond',
            'SESSIOND=',
            '"',
            '""',
            ';',
            '; ',
            ';;;;;;;;;;;;',
            '=',
            ',',
            '\\',
            ' ',
            '\t',
            'a=1',
            '$Version=1; ',
            '%00',
            '%0D%0A',
            '\xff\xfe',
            '\xc3\xa9', // é in UTF-8
            '\xf0\x9f\x98\x80', // 😀 in UTF-8
            '.',
            `sessiond=${app.token}`,
            `sessiond="${app.token}"`,
            app.id,
          ),
        },
        { weight: 2, arbitrary: fc.string({ unit: anyByte, maxLength: 12 }) },
        { weight: 1, arbitrary: wellFormedId },
        {
          weight: 1,
          arbitrary: fc
            .tuple(
              fc.constantFrom('x', 'sessiond=', ';', 'a=1; ', '"'),
              fc.integer({ min: 1, max: 3000 }),
            )
            .map(([p, times]) => p.repeat(times)),
        },
      );
      const cookie = fc.array(piece, { maxLength: 16 }).map((pieces) => pieces.join(''));
      await fc.assert(
        fc.asyncProperty(cookie, async (header) => {
          await checkProbe(await app.probe(header), header, app.token);
          await app.victimStillServed();
        }),
        { numRuns: 60 },
      );
    });

    it('oversized headers: 431 from node, or a fresh session; never a crash', async () => {
      const app = await victimApp('raw-big');
      // Over node's 16 KiB header limit: refused before the web layer sees it.
      const huge = await app.probe(`sessiond=${'A'.repeat(20_000)}`);
      assert.equal(huge.status, 431);
      await app.victimStillServed();
      // Longer than a browser keeps, or than any id: no id, so a fresh session.
      for (const length of [300, 4096, 4097, 12_000]) {
        const response = await app.probe(`sessiond=${'A'.repeat(length)}`);
        assert.equal(response.status, 200);
        assert.deepEqual(JSON.parse(response.body), { seen: null });
        assert.match(setCookieValue(response)!, FRESH_SIGNED);
      }
      // Thousands of cookies before ours do not hide it.
      const crowded = await app.probe(`${'a=1; '.repeat(2500)}sessiond=${app.token}`);
      assert.deepEqual(JSON.parse(crowded.body), { seen: 'victim' });
      await app.victimStillServed();
    });

    it('junk cookies, other names and up to seven bad same-named cookies never hide the real one', async () => {
      const app = await victimApp('raw-hide');
      const other = fc
        .tuple(
          fc.string({ unit: octet, minLength: 1, maxLength: 12 }).filter((n) => !n.includes('=')),
          fc.string({
            unit: fc.oneof(octet, fc.constantFrom(' ', '"', ',', '\\', '\xff')),
            maxLength: 30,
          }),
        )
        .map(([name, value]) => `${name === 'sessiond' ? 'x' : name}=${value}`);
      const badOwn = fc.string({ unit: octet, maxLength: 60 }).map((value) => `sessiond=${value}`);
      await fc.assert(
        fc.asyncProperty(
          fc.array(other, { maxLength: 30 }),
          fc.array(badOwn, { maxLength: 7 }),
          fc.array(fc.oneof(other, badOwn), { maxLength: 10 }),
          async (others, bad, rest) => {
            const cookie = [...others, ...bad, `sessiond=${app.token}`, ...rest].join('; ');
            const response = await app.probe(cookie);
            assert.equal(response.status, 200);
            assert.deepEqual(JSON.parse(response.body), { seen: 'victim' });
            assert.equal(setCookieValue(response), null);
          },
        ),
        { numRuns: 30 },
      );
    });

    it('a signed cookie changed in any bit or byte, cut, extended, or signed by another key, is refused', async () => {
      const app = await victimApp('raw-tamper');
      const other = await send(app.server.port, { target: '/probe' });
      const attackerMac = setCookieValue(other)!.split('.')[1]!;
      const token = app.token;
      const forgery = fc.oneof(
        fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([at, bit]) => {
          const i = at % token.length;
          const flipped = token.charCodeAt(i) ^ (1 << bit);
          const byte = flipped === 0x0d || flipped === 0x0a ? 0x20 : flipped;
          return token.slice(0, i) + String.fromCharCode(byte) + token.slice(i + 1);
        }),
        fc.tuple(fc.nat(), anyByte).map(([at, byte]) => {
          const i = at % token.length;
          return token.slice(0, i) + byte + token.slice(i + 1);
        }),
        fc.nat().map((at) => token.slice(0, at % token.length)),
        fc.string({ unit: octet, minLength: 1, maxLength: 40 }).map((tail) => token + tail),
        fc
          .uint8Array({ minLength: 32, maxLength: 48 })
          .map((k) => new Signer([Buffer.from(k)]).sign(app.id)),
        fc.constant(app.id),
        // The attacker's own valid signature, moved onto the victim's id.
        fc.constant(`${app.id}.${attackerMac}`),
      );
      await fc.assert(
        fc.asyncProperty(forgery, async (forged) => {
          fc.pre(forged !== token);
          const response = await app.probe(`sessiond=${forged}`);
          // Defends against forging or altering a token to reach another visitor's session.
          if (REFUSED.test(forged)) return assert.equal(response.status, 400);
          assert.equal(response.status, 200);
          assert.deepEqual(JSON.parse(response.body), { seen: null });
          const value = setCookieValue(response);
          assert.match(value!, FRESH_SIGNED);
          assert.notEqual(value, forged);
        }),
        { numRuns: 60 },
      );
      await app.victimStillServed();
      assert.equal(await context.backing.engine.get(app.id, 'owner'), '"victim"');
    });

    describe('ids in every carrier', () => {
      type Carrier = 'cookie' | 'header' | 'query';
      /** The request to /write carrying `token` (raw bytes for cookie and header, encoded in a URL). */
      const carrying = (carrier: Carrier, token: string): RawRequest => {
        if (carrier === 'cookie')
          return { target: '/write', headers: [['Cookie', `sessiond=${token}`]] };
        if (carrier === 'header') return { target: '/write', headers: [['X-Session-Id', token]] };
        const utf8 = Buffer.from(token, 'latin1').toString('utf8');
        return {
          target: `/write?sessiond=${encodeURIComponent(utf8.replace(/[\uD800-\uDFFF]/g, ''))}`,
        };
      };
      /** What /write answered, checked: the issued id is fresh and is all that the response carries. */
      const written = (response: RawResponse, carrier: Carrier) => {
        assert.equal(response.status, 200);
        const body = JSON.parse(response.body) as { id: string; next: string; field: string };
        assert.match(body.id, FRESH);
        // The response carries the issued id and nothing the client sent.
        if (carrier === 'cookie') assert.equal(setCookieValue(response), body.id);
        else assert.equal(response.headers.get('set-cookie'), undefined);
        assert.deepEqual(
          response.headers.get('x-session-id'),
          carrier === 'header' ? [body.id] : undefined,
        );
        assert.equal(body.next, carrier === 'query' ? `/next?sessiond=${body.id}` : '/next');
        assert.equal(
          body.field,
          carrier === 'query' ? `<input type="hidden" name="sessiond" value="${body.id}">` : '',
        );
        return body.id;
      };
      /** A well-formed id with one byte inside that no id may have (CR, LF and ';' aside in headers). */
      const withForbiddenByte = (carrier: Carrier) =>
        fc
          .tuple(
            wellFormedId.filter((id) => id.length >= 2),
            carrier === 'query'
              ? fc.constantFrom('\x00', '\r', '\n', ' ', '"', ',', ';', '\\', '\x7f', '\xff', 'é')
              : fc.constantFrom('\x01', '\t', ' ', '"', ',', '\\', '\x7f', '\x80', '\xff'),
            fc.nat(),
          )
          .map(([id, bad, at]) => {
            const i = 1 + (at % (id.length - 1));
            return id.slice(0, i) + bad + id.slice(i);
          });

      for (const carrier of ['cookie', 'header', 'query'] as const) {
        it(`an id with a forbidden byte, or too long, in the ${carrier} is never adopted, even with strict mode off`, async () => {
          const { server } = await context.app(
            { className: `raw-bad-${carrier}`, carrier, strict: false },
            ROUTES,
          );
          const bad = fc.oneof(
            withForbiddenByte(carrier),
            fc.string({ unit: octet, minLength: 256, maxLength: 300 }),
          );
          await fc.assert(
            fc.asyncProperty(bad, async (token) => {
              const response = await send(server.port, carrying(carrier, token));
              if (carrier !== 'query' && REFUSED.test(token))
                return assert.equal(response.status, 400);
              // Defends against ids that split headers or smuggle markup into pages.
              assert.notEqual(written(response, carrier), token);
            }),
            { numRuns: 25 },
          );
        });

        it(`a made-up id in the ${carrier} never becomes a session: a fresh id is issued`, async () => {
          const { server } = await context.app(
            { className: `raw-fix-${carrier}`, carrier },
            ROUTES,
          );
          await fc.assert(
            fc.asyncProperty(wellFormedId, async (madeUp) => {
              const id = written(await send(server.port, carrying(carrier, madeUp)), carrier);
              // Strict mode defends against fixation: the attacker's chosen id is never created.
              assert.notEqual(id, madeUp);
              assert.equal(await context.backing.engine.ctl(madeUp, 'EXIST'), 0);
            }),
            { numRuns: 20 },
          );
        });
      }
    });

    describe('ids longer than the store allows', () => {
      const small = useBacking(() => make({ limits: { maxIdBytes: 40 } }));
      for (const concurrency of ['none', 'lock'] as const) {
        it(`a well-formed cookie longer than the store's maxIdBytes gets a fresh session, not a 500 (${concurrency})`, async () => {
          const { server } = await small.app(
            { className: `raw-small-${concurrency}`, concurrency },
            ROUTES,
          );
          for (const length of [41, 100, 255]) {
            const cookie = `sessiond=${'A'.repeat(length)}`;
            // Defends against a cookie the store cannot take turning every page into a 500.
            const read = await send(server.port, {
              target: '/probe',
              headers: [['Cookie', cookie]],
            });
            assert.equal(read.status, 200);
            assert.match(setCookieValue(read)!, FRESH);
            const write = await send(server.port, {
              target: '/write',
              headers: [['Cookie', cookie]],
            });
            assert.equal(write.status, 200);
          }
        });
      }
    });

    describe('hostile Host headers and request targets', () => {
      let port = 0;
      let victim = '';
      let closeServer: () => Promise<void> = () => Promise.resolve();
      /** Get mode (query carrier), so that URLs carry the id; one Host allowed for absolute URLs. */
      before(async () => {
        const backing: Backing = context.backing;
        const sessions = createSessions({
          ...backing.options,
          className: 'raw-host',
          carrier: 'query',
          allowedHosts: ['shop.example'],
          gc: false,
        });
        const server = await listen(
          withSessions(sessions, (req, res, session) => {
            session.set('x', 1);
            const next = URL.parse(req.url ?? '/', 'http://base.invalid')?.searchParams.get('next');
            // The app redirects to its own URL and links to where the client asked: the classic traps.
            const body = JSON.stringify({
              id: session.id,
              next: typeof next === 'string' ? session.url(next) : null,
              field: session.hiddenField(),
            });
            res.writeHead(302, {
              location: session.selfUrl(),
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(body),
            });
            res.end(body);
          }),
        );
        port = server.port;
        closeServer = () => server.close();
        victim = (JSON.parse((await send(port, { target: '/' })).body) as { id: string }).id;
      });
      after(() => closeServer());

      /** Every header this app's responses may have: anything else would be an injected one. */
      const EXPECTED_HEADERS = new Set([
        'location',
        'content-type',
        'content-length',
        'cache-control',
        'referrer-policy',
        'date',
        'connection',
      ]);

      it('never an open redirect, an injected header, or the id in a URL for a foreign host', async () => {
        const host = fc.oneof(
          fc.constantFrom(
            'shop.example',
            'SHOP.Example',
            'shop.example:80',
            'shop.example.',
            'evil.example',
            'shop.example@evil.example',
            'evil.example/shop.example',
            'shop.example.evil.example',
            'shop.example evil.example',
            '',
            '[::1]',
            '\xffvil.example',
            'shop.example\x00',
          ),
          fc.string({ unit: anyByte, maxLength: 16 }),
          fc.constant(null),
        );
        const hostileNext = fc
          .array(
            fc.constantFrom(
              '//evil.example',
              '/\\evil.example',
              'https://evil.example/',
              'http://shop.example/',
              'https://shop.example/',
              'javascript:alert(1)',
              '\tjavascript:alert(1)',
              ' //evil.example',
              'http:evil.example',
              '/',
              '?',
              '&',
              '#',
              'sessiond=planted',
              '%0D%0ALocation: //evil.example',
              '\r\nSet-Cookie: x=1',
              '"><script>',
              'x',
            ),
            { maxLength: 5 },
          )
          .map((parts) => `next=${encodeURIComponent(parts.join(''))}`);
        const queryPiece = fc.oneof(
          hostileNext,
          fc.constantFrom(
            'sessiond=made-up-id-0123456789abcdef',
            'sessiond=',
            'sessiond',
            '%73essiond=made-up-id-0123456789abcdef',
            'sessiond=%0D%0A',
            'sessiond=%22%3E%3Cscript%3E',
            'a=1',
            '',
          ),
          fc.constant(`sessiond=${victim}`),
          fc.integer({ min: 1, max: 12_000 }).map((n) => `q=${'x'.repeat(n)}`),
        );
        const target = fc
          .tuple(
            fc.constantFrom(
              '/',
              '//evil.example/',
              '/\\evil.example/',
              '///evil.example',
              'http://evil.example/',
              'http://shop.example//evil.example/',
              '/a/../..//evil.example',
              '/%2F%2Fevil.example',
              '/"<>`',
              '*',
              '/a#frag',
            ),
            fc.array(queryPiece, { maxLength: 5 }),
            fc.constantFrom('', '#x', '#//evil.example'),
          )
          .map(
            ([path, query, hash]) => (query.length ? `${path}?${query.join('&')}` : path) + hash,
          );
        await fc.assert(
          fc.asyncProperty(target, host, async (t, h) => {
            const response = await send(port, { target: t, host: h });
            // Node refuses oversized heads, a missing Host (HTTP/1.1) and control bytes in it.
            if (t.length > 16_000 && response.status === 431) return;
            if (h === null || REFUSED.test(h)) return assert.equal(response.status, 400);
            // Never a 500: an invalid header value would make node throw, so none was made.
            assert.equal(response.status, 302, `${JSON.stringify(t)} ${JSON.stringify(h)}`);
            for (const name of response.headers.keys()) assert.ok(EXPECTED_HEADERS.has(name), name);
            const body = JSON.parse(response.body) as {
              id: string;
              next: string | null;
              field: string;
            };
            assert.match(body.id, FRESH);
            const [location = ''] = response.headers.get('location') ?? [];
            // Absolute only for the allowed Host: defends against Host poisoning and open redirects.
            if (h.toLowerCase() === 'shop.example') {
              assert.ok(location.startsWith('http://shop.example/'), location);
            } else {
              assert.match(location, /^\/(?![/\\])/, `${JSON.stringify(t)} -> ${location}`);
            }
            const resolved = URL.parse(location, 'http://shop.example/a/b');
            assert.equal(resolved?.origin, 'http://shop.example');
            assert.deepEqual(resolved.searchParams.getAll('sessiond'), [body.id]);
            if (body.next?.includes(body.id)) {
              // The id only rides in links to this site.
              const link = URL.parse(body.next, 'http://shop.example/a/b');
              assert.ok(
                link?.origin === 'http://shop.example' || link?.origin === 'https://shop.example',
                body.next,
              );
            }
            assert.equal(body.field, `<input type="hidden" name="sessiond" value="${body.id}">`);
          }),
          { numRuns: 120 },
        );
      });

      it('repeated and disguised session parameters: only the first counts, and URLs carry one', async () => {
        const madeUp = 'made-up-id-0123456789abcdef';
        const first = await send(port, { target: `/p?sessiond=${victim}&sessiond=${madeUp}` });
        assert.equal((JSON.parse(first.body) as { id: string }).id, victim);
        assert.equal(first.headers.get('location')?.[0], `/p?sessiond=${victim}`);
        // Only the first parameter is read: one put before the real id gets a fresh session, and
        // neither the real id nor the planted one is taken over.
        const second = await send(port, { target: `/p?sessiond=${madeUp}&sessiond=${victim}` });
        const fresh = (JSON.parse(second.body) as { id: string }).id;
        assert.notEqual(fresh, victim);
        assert.notEqual(fresh, madeUp);
        assert.equal(second.headers.get('location')?.[0], `/p?sessiond=${fresh}`);
        // A percent-encoded name is the same name to the reader and to the URL helpers alike.
        const encoded = await send(port, { target: `/p?%73essiond=${victim}&a=1` });
        assert.equal(encoded.headers.get('location')?.[0], `/p?a=1&sessiond=${victim}`);
      });
    });
  });
}
