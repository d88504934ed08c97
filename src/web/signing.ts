import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/** HMAC-SHA256 keys shorter than this could be brute-forced offline from one signed cookie. */
export const MIN_KEY_BYTES = 32;

/** How many ids keep their MAC in memory (a few MB at most, ids being at most 255 bytes). */
const MEMO_SIZE = 10_000;

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
  /**
   * Id -> its MAC under the first key, for ids this signer made or verified: an HMAC costs more
   * than the rest of a request's cookie handling. Sound because the MAC is a pure function of
   * the id and of keys that never change for this signer (new keys make a new Signer); only
   * genuine ids enter, so a forger can neither fill it nor get a hit; and it is bounded.
   */
  #memo = new Map<string, string>();

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
    if (key === undefined) return id;
    let signature = this.#memo.get(id);
    if (signature === undefined) {
      signature = mac(key, id);
      this.#remember(id, signature);
    }
    return `${id}.${signature}`;
  }

  /** The id a token carries when some key signed it; null for a tampered or unsigned token. */
  unsign(token: string): string | null {
    if (!this.enabled) return token;
    const dot = token.lastIndexOf('.');
    if (dot < 1) return null;
    const id = token.slice(0, dot);
    const given = token.slice(dot + 1);
    const known = this.#memo.get(id);
    if (known !== undefined && sameText(given, known)) return id;
    let first: string | undefined;
    for (const key of this.#keys) {
      const expected = mac(key, id);
      first ??= expected;
      if (sameText(given, expected)) {
        // Genuine (perhaps under an older key): its MAC under the first key is remembered.
        if (known === undefined) this.#remember(id, first);
        return id;
      }
    }
    return null;
  }

  #remember(id: string, signature: string): void {
    // Oldest first out: the memo never grows past MEMO_SIZE, whatever the traffic.
    if (this.#memo.size >= MEMO_SIZE) this.#memo.delete(this.#memo.keys().next().value!);
    this.#memo.set(id, signature);
  }
}

/**
 * Whether two MACs are equal, through `timingSafeEqual`, in time that depends on their length
 * only: defends against forging a signature byte by byte from response timings. UTF-8, not
 * latin1: two different tokens never become the same bytes.
 */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  const given = Buffer.from(a, 'utf8');
  const expected = Buffer.from(b, 'utf8');
  // The length is public (a MAC is always 43 characters); only the content must not leak.
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function mac(key: KeyObject, id: string): string {
  return createHmac('sha256', key).update(id).digest('base64url');
}
