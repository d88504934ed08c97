import { Buffer, isUtf8 } from 'node:buffer';
import { SessiondError, syntaxError } from '../../errors.ts';
import type { MapReply, Reply } from '../../protocol/resp/encoder.ts';

/** A JSON value, as `JSON.stringify` writes it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Bytes that are not UTF-8 text, carried in JSON as base64 (RFC 4648 section 4, padded). */
export interface Base64Bytes {
  base64: string;
}

// Canonical padded base64 only: Buffer.from(s, 'base64') skips junk silently, which would let a
// typo store different bytes than the client meant.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// In a `u` regex a well-formed surrogate pair is one code point, so this finds only lone halves.
const LONE_SURROGATE = /\p{Cs}/u;
// eslint-disable-next-line no-control-regex -- ASCII is the common case and needs no conversion
const ASCII = /^[\x00-\x7f]*$/;

/**
 * The byte string (one byte per code unit, as the engine holds values) of a JSON argument: a
 * string is encoded as UTF-8; `{"base64": "..."}` gives its bytes as they are.
 * @throws ERR for anything else, for a string with a lone surrogate (it has no UTF-8 form, and
 * replacing it would store a value the client did not send), and for base64 that is not canonical
 */
export function argFromJson(value: unknown): string {
  if (typeof value === 'string') {
    if (ASCII.test(value)) return value;
    if (LONE_SURROGATE.test(value)) throw syntaxError('argument is not well-formed Unicode');
    return Buffer.from(value, 'utf8').toString('latin1');
  }
  if (isBase64Bytes(value)) {
    if (!BASE64.test(value.base64)) throw syntaxError('argument is not canonical base64');
    return Buffer.from(value.base64, 'base64').toString('latin1');
  }
  throw syntaxError('arguments must be strings or {"base64": "..."} objects');
}

/**
 * A byte string as JSON: text when its bytes are UTF-8 (ASCII included), else `{"base64"}`.
 * Bytes that happen to be valid UTF-8 come back as text even if they were stored as binary.
 */
export function bytesToJson(bytes: string | Buffer): string | Base64Bytes {
  if (typeof bytes === 'string' && ASCII.test(bytes)) return bytes;
  const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  return isUtf8(buffer) ? buffer.toString('utf8') : { base64: buffer.toString('base64') };
}

/**
 * An error message as text. Messages are ASCII prose, but some quote client input, which is a
 * byte string: those bytes are decoded as UTF-8 when they are UTF-8, and left alone otherwise
 * (a code unit above 0xFF means the message is text already, e.g. a redacted id's `…`).
 */
export function messageText(message: string): string {
  if (ASCII.test(message)) return message;
  for (let i = 0; i < message.length; i++) if (message.charCodeAt(i) > 0xff) return message;
  const buffer = Buffer.from(message, 'latin1');
  return isUtf8(buffer) ? buffer.toString('utf8') : message;
}

/**
 * Converts a command's {@link Reply} to JSON, as documented in ROUTES.md:
 * byte strings as text or `{"base64"}`, integers as numbers or (beyond 2^53) decimal strings,
 * maps as objects (or [key, value] pairs when a key is not text), errors nested in a reply as
 * `{"error": {"code", "message"}}`.
 *
 * @throws TypeError, RangeError for a value no reply may hold (a fraction as an integer, an
 * integer beyond 64 bits), as the RESP encoder does
 *
 * @example
 * replyToJson(mapReply([['cart', '3']])); // { cart: '3' }
 * replyToJson(2n ** 60n); // '1152921504606846976'
 */
export function replyToJson(reply: Reply): Json {
  if (reply === null) return null;
  if (typeof reply === 'string' || Buffer.isBuffer(reply)) return bytesToJson(reply) as Json;
  if (typeof reply === 'number') return integer(reply);
  if (typeof reply === 'bigint') return bigInteger(reply);
  if (typeof reply === 'boolean') return reply;
  if (isReplyArray(reply)) return reply.map(replyToJson);
  if (reply instanceof SessiondError) return errorJson(reply.code, reply.message);
  switch (reply.kind) {
    case 'simple':
      return reply.text;
    case 'error':
      return errorJson(reply.code, reply.message);
    case 'map':
      return mapToJson(reply.entries);
    case 'push':
      return reply.items.map(replyToJson);
    case 'double':
      // JSON has no inf or nan (JSON.stringify would write null): spelled as RESP3 spells them.
      if (Number.isNaN(reply.value)) return 'nan';
      if (!Number.isFinite(reply.value)) return reply.value > 0 ? 'inf' : '-inf';
      return reply.value;
    case 'null-array':
      return null;
  }
}

/** The `{"error": ...}` body of a failed request, and the form of an error inside a reply. */
export function errorJson(code: string, message: string): { error: Json } {
  return { error: { code, message: messageText(message) } };
}

function integer(value: number): number {
  if (!Number.isSafeInteger(value)) {
    throw new TypeError(`integer reply must be a safe integer, got ${value}`);
  }
  return value;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function bigInteger(value: bigint): number | string {
  if (value < INT64_MIN || value > INT64_MAX) {
    throw new RangeError(`integer reply out of 64-bit range: ${value}`);
  }
  // A JSON number past 2^53 is rounded by JavaScript's JSON.parse (and many others): a decimal
  // string keeps every digit.
  return value >= SAFE_MIN && value <= SAFE_MAX ? Number(value) : String(value);
}

function mapToJson(entries: MapReply['entries']): Json {
  const pairs: Array<[Json, Json]> = [];
  let textKeys = true;
  for (const [key, value] of entries) {
    const name = mapKey(key);
    if (typeof name !== 'string') textKeys = false;
    pairs.push([name, replyToJson(value)]);
  }
  // Object.fromEntries defines own properties, so a key such as "__proto__" stays a key and
  // cannot reach the prototype (defends against prototype pollution by a variable's name).
  if (textKeys) return Object.fromEntries(pairs as Array<[string, Json]>);
  // An object key can only be text: when one is not, the whole map goes as [key, value] pairs.
  return pairs;
}

function mapKey(key: Reply): Json {
  if (typeof key === 'number' || typeof key === 'bigint') return String(key);
  return replyToJson(key);
}

function isBase64Bytes(value: unknown): value is Base64Bytes {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    Object.hasOwn(value, 'base64') &&
    typeof (value as { base64?: unknown }).base64 === 'string'
  );
}

// Array.isArray does not narrow readonly arrays out of a union; this does.
function isReplyArray(reply: Reply): reply is readonly Reply[] {
  return Array.isArray(reply);
}
