import { randomBytes } from 'node:crypto';
import { SessiondError } from '../errors.ts';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
// The largest multiple of 62 that fits a byte: bytes at or above it are dropped, so every
// character is equally likely (a plain `% 62` would favour the first 8).
const UNBIASED_LIMIT = 248;

/** Bits of entropy in an alphanumeric id of `length` characters. */
export const entropyBits = (length: number): number => length * Math.log2(62);

/**
 * A random alphanumeric string from the operating system's CSPRNG.
 * Defends against guessable ids (PHPLib's md5(uniqid()) left about 20 unknown bits).
 */
export function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    const bytes = randomBytes(Math.ceil((length - out.length) * 1.1) + 8);
    for (const b of bytes) {
      if (b >= UNBIASED_LIMIT) continue;
      out += ALPHANUMERIC[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/**
 * Whether `code` may stand in a session id: an RFC 6265 cookie-octet
 * (https://www.rfc-editor.org/rfc/rfc6265#section-4.1.1): visible ASCII but `"` `,` `;` `\`.
 * Ids travel in cookies, URLs and headers; control bytes, spaces and separators in them would
 * let an id split a header or smuggle a second cookie.
 */
function isIdByte(code: number): boolean {
  return (
    code >= 0x21 && code <= 0x7e && code !== 0x22 && code !== 0x2c && code !== 0x3b && code !== 0x5c
  );
}

/** {@link isIdByte} for each ASCII code as 1 or 0: one load a character on every command. */
const ID_BYTES = Uint8Array.from({ length: 128 }, (_, code) => (isIdByte(code) ? 1 : 0));

/**
 * Checks a caller-given session id.
 * @throws SessiondError BADID when it is empty, longer than `maxBytes`, or has a forbidden byte.
 */
export function validateId(id: string, maxBytes: number): void {
  if (id.length === 0) throw new SessiondError('BADID', 'session id is empty');
  if (id.length > maxBytes)
    throw new SessiondError('BADID', `session id is longer than ${maxBytes} bytes`);
  for (let i = 0; i < id.length; i++) {
    // A code past the table reads undefined, which is not 1.
    if (ID_BYTES[id.charCodeAt(i)] !== 1) {
      throw new SessiondError(
        'BADID',
        'session id has a forbidden byte (only RFC 6265 cookie-octets)',
      );
    }
  }
}
