import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withTimingSafeEqual } from '../../test/support/timing-safe.ts';
import { Signer } from './signing.ts';

const OLD = 'o'.repeat(32);
const NEW = Buffer.alloc(32, 7);

describe('Signer', () => {
  it('without keys a token is the bare id', () => {
    const signer = new Signer([]);
    assert.equal(signer.enabled, false);
    assert.equal(signer.sign('abc'), 'abc');
    assert.equal(signer.unsign('abc'), 'abc');
  });

  it('signs with the first key and accepts any key: rotation without logging anyone out', () => {
    const before = new Signer([OLD]);
    const during = new Signer([NEW, OLD]);
    const after = new Signer([NEW]);
    const oldToken = before.sign('id123');
    assert.match(oldToken, /^id123\.[\w-]{43}$/);
    assert.equal(during.unsign(oldToken), 'id123');
    assert.equal(after.unsign(oldToken), null);
    assert.equal(after.unsign(during.sign('id123')), 'id123');
  });

  it('rejects a tampered id, a tampered or truncated mac, and an unsigned id', () => {
    const signer = new Signer([OLD]);
    const token = signer.sign('id123');
    const mac = token.split('.')[1]!;
    assert.equal(signer.unsign(`id124.${mac}`), null);
    assert.equal(signer.unsign(`id123.${mac.slice(0, -1)}`), null);
    assert.equal(signer.unsign(`id123.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`), null);
    assert.equal(signer.unsign('id123'), null);
    assert.equal(signer.unsign('.x'), null);
  });

  it('an id with dots of its own still verifies: the mac follows the last dot', () => {
    const signer = new Signer([OLD]);
    assert.equal(signer.unsign(signer.sign('a.b.c')), 'a.b.c');
  });

  it('answers the same for an id it has seen: a tampered mac of a known id is still refused', () => {
    const before = new Signer([OLD]);
    const signer = new Signer([NEW, OLD]);
    const token = signer.sign('id123');
    const mac = token.split('.')[1]!;
    for (let round = 0; round < 2; round++) {
      assert.equal(signer.unsign(token), 'id123');
      assert.equal(
        signer.unsign(`id123.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`),
        null,
      );
      assert.equal(signer.unsign(`id123.${mac.slice(0, -1)}`), null);
      // A cookie signed before the rotation still verifies once the id is known.
      assert.equal(signer.unsign(before.sign('id123')), 'id123');
      assert.equal(signer.sign('id123'), token);
    }
  });

  it('keeps answering right past its memo of 10,000 ids', () => {
    const signer = new Signer([OLD]);
    const tokens = Array.from({ length: 10_050 }, (_, i) => signer.sign(`id${i}`));
    for (const [i, token] of tokens.entries()) assert.equal(signer.unsign(token), `id${i}`);
    assert.equal(signer.unsign(`id0.${tokens[1]!.split('.')[1]}`), null);
  });

  it('refuses keys shorter than 32 bytes', () => {
    assert.throws(() => new Signer(['short']), RangeError);
  });

  it('compares every mac through crypto.timingSafeEqual, whose verdict alone decides', () => {
    const signer = new Signer([NEW, OLD]);
    const token = signer.sign('id123');
    const mac = token.split('.')[1]!;
    const forged = `id456.${mac}`;
    // A known id (its mac remembered) and an unknown one: each comparison goes through it.
    let calls = withTimingSafeEqual(undefined, () => assert.equal(signer.unsign(token), 'id123'));
    assert.equal(calls.length, 1);
    calls = withTimingSafeEqual(undefined, () => assert.equal(signer.unsign(forged), null));
    assert.equal(calls.length, 2, 'one comparison per key');
    for (const [given, expected] of calls) assert.equal(given.length, expected.length);
    withTimingSafeEqual(false, () => assert.equal(signer.unsign(token), null));
    withTimingSafeEqual(true, () => assert.equal(signer.unsign(forged), 'id456'));
  });
});
