import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** HMAC-SHA256 keys shorter than this could be brute-forced offline from one signed cookie. */
export const MIN_KEY_BYTES = 32;

/**
 * Signs session ids with HMAC-SHA256 so that only ids this application issued are looked up.
 * Rotation: the first key signs, every key verifies; put a new key first and drop the oldest
 * once the cookies it signed have expired.
 *
 * @example
 * const signer = new Signer([process.env.SESSION_KEY_NEW!, process.env.SESSION_KEY_OLD!]);
 * signer.unsign(signer.sign(id)); // id
 */
export class Signer {
  /** KeyObjects made once: an HMAC over a Buffer key costs about eight times as much in Node 24. */
  #keys: KeyObject[];

  /** @throws RangeError when a key is shorter than 32 bytes */
  constructor(keys: ReadonlyArray<string | Buffer>) {
    const raw = keys.map((key) => (typeof key === 'string' ? Buffer.from(key, 'utf8') : key));
    if (raw.some((key) => key.length < MIN_KEY_BYTES)) {
      throw new RangeError(`signing keys must be at least ${MIN_KEY_BYTES} bytes`);
    }
    this.#keys = raw.map((key) => createSecretKey(key));
  }

  /** Whether any key is set; without one, tokens are the bare ids. */
  get enabled(): boolean {
    return this.#keys.length > 0;
  }

  /** The token that travels: `id.mac` with the first key, or the id when signing is off. */
  sign(id: string): string {
    const key = this.#keys[0];
    return key === undefined ? id : `${id}.${mac(key, id)}`;
  }

  /** The id a token carries when some key signed it; null for a tampered or unsigned token. */
  unsign(token: string): string | null {
    if (!this.enabled) return token;
    const dot = token.lastIndexOf('.');
    if (dot < 1) return null;
    const id = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1));
    for (const key of this.#keys) {
      const expected = Buffer.from(mac(key, id));
      // Constant-time comparison: defends against forging a signature byte by byte from timings.
      if (given.length === expected.length && timingSafeEqual(given, expected)) return id;
    }
    return null;
  }
}

function mac(key: KeyObject, id: string): string {
  return createHmac('sha256', key).update(id).digest('base64url');
}
