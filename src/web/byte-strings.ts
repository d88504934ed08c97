/**
 * The engine keeps byte strings (one byte per UTF-16 code unit, as RESP delivers them); the web
 * layer and the client speak Unicode. These convert through UTF-8, so a value written in-process
 * reads back the same through the remote client, and the other way round.
 */

// Pure ASCII is the same in both forms: most names and JSON values skip the Buffer round trip.
const ASCII = /^\p{ASCII}*$/u;

/** Unicode text to the byte string of its UTF-8 encoding. */
export function toBytes(text: string): string {
  return ASCII.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1');
}

/** A byte string back to Unicode; bytes that are not valid UTF-8 become U+FFFD. */
export function fromBytes(bytes: string): string {
  return ASCII.test(bytes) ? bytes : Buffer.from(bytes, 'latin1').toString('utf8');
}
