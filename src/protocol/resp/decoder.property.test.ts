import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { RequestDecoder, type Command } from './decoder.ts';
import { ProtocolError } from './protocol-error.ts';

/** Encodes commands as RESP multibulk requests, arguments as latin1 bytes. */
function encode(commands: Command[]): Buffer {
  const parts: Buffer[] = [];
  for (const args of commands) {
    parts.push(Buffer.from(`*${args.length}\r\n`));
    for (const arg of args) {
      const bytes = Buffer.from(arg, 'latin1');
      parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
    }
  }
  return Buffer.concat(parts);
}

/** Feeds `bytes` in the given chunk sizes; everything the decoder produced. */
function decode(
  bytes: Buffer,
  cuts: number[],
  decoder = new RequestDecoder(),
): Array<Command | ProtocolError> {
  const out: Array<Command | ProtocolError> = [];
  let at = 0;
  for (const cut of [
    ...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b),
    bytes.length,
  ]) {
    if (cut <= at) continue;
    decoder.push(bytes.subarray(at, cut));
    at = cut;
    for (let got = decoder.next(); got !== undefined; got = decoder.next()) {
      out.push(got);
      if (got instanceof ProtocolError) return out;
    }
  }
  return out;
}

// Arguments of any bytes, the RESP framing characters and NUL included.
const arg = fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes).toString('latin1'));
const command = fc.array(arg, { minLength: 1, maxLength: 6 });

describe('RESP decoder properties (fast-check)', () => {
  it('any split of valid frames decodes to the same commands', () => {
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (commands, cuts) => {
          const bytes = encode(commands);
          const whole = decode(bytes, []);
          assert.deepEqual(whole, commands);
          assert.deepEqual(
            decode(
              bytes,
              cuts.map((c) => c % (bytes.length + 1)),
            ),
            commands,
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random bytes never throw, and end in commands, a protocol error, or a wait for more', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 400 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (raw, cuts) => {
          const bytes = Buffer.from(raw);
          const results = decode(
            bytes,
            cuts.map((c) => c % (bytes.length + 1)),
          );
          for (const result of results.slice(0, -1)) assert.ok(Array.isArray(result));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('random bytes never make the decoder hold more than the query buffer limit', () => {
    const maxQueryBuffer = 1024;
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 20 }),
        (chunks) => {
          const decoder = new RequestDecoder({
            maxQueryBuffer,
            maxBulkLength: 512,
            maxInlineLength: 512,
          });
          for (const chunk of chunks) {
            decoder.push(Buffer.from(chunk));
            let got = decoder.next();
            while (Array.isArray(got)) got = decoder.next();
            if (got instanceof ProtocolError) return;
            // What stays buffered is at most one incomplete request, bounded by the limits.
            assert.ok(
              decoder.bufferedBytes <= maxQueryBuffer + 300,
              `holds ${decoder.bufferedBytes} bytes`,
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
