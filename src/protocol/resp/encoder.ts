import { Buffer } from 'node:buffer';
import { SessiondError, type ErrorCode } from '../../errors.ts';

/** The RESP version a connection speaks: 2 until `HELLO 3`. */
export type RespVersion = 2 | 3;

/** A status reply, `+OK`: text, never a value from a client. */
export interface SimpleStringReply {
  readonly kind: 'simple';
  readonly text: string;
}

/** An error reply, `-CODE message`. */
export interface ErrorReply {
  readonly kind: 'error';
  readonly code: ErrorCode;
  readonly message: string;
}

/** A map: RESP3 `%`, a flat array key, value, ... under RESP2. */
export interface MapReply {
  readonly kind: 'map';
  readonly entries: ReadonlyMap<Reply, Reply> | readonly (readonly [Reply, Reply])[];
}

/** An out-of-band message (pub/sub): RESP3 `>`, an array under RESP2. */
export interface PushReply {
  readonly kind: 'push';
  readonly items: readonly Reply[];
}

/** A floating-point number: RESP3 `,`, a bulk string under RESP2. */
export interface DoubleReply {
  readonly kind: 'double';
  readonly value: number;
}

/** The null array: `*-1` under RESP2, `_` under RESP3. */
export interface NullArrayReply {
  readonly kind: 'null-array';
}

/**
 * A reply as a value, so a command table can describe its answers as data.
 *
 * - `string`: a bulk string holding a byte string (one byte per code unit), `Buffer`: its bytes
 * - `null`: the null bulk string (`$-1`; `_` under RESP3)
 * - `number` (a safe integer) and `bigint` (64-bit signed): an integer
 * - `boolean`: RESP3 `#t`/`#f`, `:1`/`:0` under RESP2
 * - an array: an array of replies
 * - a {@link SessiondError}: its error reply
 * - the tagged kinds: {@link simpleString}, {@link errorReply}, {@link mapReply},
 *   {@link pushReply}, {@link doubleReply}, {@link NULL_ARRAY}
 */
export type Reply =
  | string
  | Buffer
  | number
  | bigint
  | boolean
  | null
  | readonly Reply[]
  | SessiondError
  | SimpleStringReply
  | ErrorReply
  | MapReply
  | PushReply
  | DoubleReply
  | NullArrayReply;

/** A status reply, e.g. `simpleString('OK')`. */
export const simpleString = (text: string): SimpleStringReply => ({ kind: 'simple', text });

/** An error reply with a stable code word, e.g. `errorReply('ERR', 'syntax error')`. */
export const errorReply = (code: ErrorCode, message: string): ErrorReply => ({
  kind: 'error',
  code,
  message,
});

/** A map reply from a Map or from [key, value] pairs, in that order. */
export const mapReply = (entries: MapReply['entries']): MapReply => ({ kind: 'map', entries });

/** A push reply, e.g. `pushReply(['message', channel, sid])`. */
export const pushReply = (items: readonly Reply[]): PushReply => ({ kind: 'push', items });

/** A double reply. */
export const doubleReply = (value: number): DoubleReply => ({ kind: 'double', value });

/** The null array. */
export const NULL_ARRAY: NullArrayReply = Object.freeze({ kind: 'null-array' });

/** Buffers up to this size are copied into the pending text; larger ones are kept as they are. */
const INLINE_BUFFER_MAX = 1024;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Accumulates the replies of a batch (a pipeline's worth) and hands them over as one Buffer, so
 * the server writes to the socket once per batch.
 *
 * Values (bulk strings) are byte strings and go out byte for byte (latin1); a code unit above 0xFF
 * is cut to its low byte, as Buffer's latin1 encoding does, so a length prefix always matches
 * what follows. Text (status lines, error messages) is UTF-8 and has CR and LF replaced by spaces.
 *
 * A reply that fails to encode (an integer that is not one) throws and leaves the batch as it was.
 *
 * @example
 * const writer = new ReplyWriter();
 * writer.simple('OK').integer(1).bulk('cart=3').nil();
 * socket.write(writer.toBuffer()); // +OK\r\n:1\r\n$6\r\ncart=3\r\n$-1\r\n
 */
export class ReplyWriter {
  /** The version replies are encoded in; set it to 3 before writing the reply to `HELLO 3`. */
  version: RespVersion;

  // The batch so far: #parts, then #text. Text is latin1 (a byte per code unit); a large Buffer
  // value is kept as a part of its own rather than copied into a string.
  #parts: (string | Buffer)[] = [];
  #partsBytes = 0;
  #text = '';

  constructor(version: RespVersion = 2) {
    this.version = version;
  }

  /** Bytes written since the last {@link ReplyWriter.toBuffer}. */
  get byteLength(): number {
    return this.#partsBytes + this.#text.length;
  }

  /** A status reply, `+text`. */
  simple(text: string): this {
    this.#text += '+' + wireText(text) + '\r\n';
    return this;
  }

  /**
   * An error reply, `-CODE message`: from a {@link SessiondError} (a ProtocolError included) or
   * from a code word and a message.
   */
  error(error: SessiondError): this;
  error(code: ErrorCode, message: string): this;
  error(codeOrError: ErrorCode | SessiondError, message = ''): this {
    const [code, text] =
      codeOrError instanceof SessiondError
        ? [codeOrError.code, codeOrError.message]
        : [codeOrError, message];
    this.#text += '-' + code + ' ' + wireText(text) + '\r\n';
    return this;
  }

  /** An integer reply; throws TypeError unless a safe integer, RangeError unless 64-bit. */
  integer(value: number | bigint): this {
    if (typeof value === 'bigint') {
      if (value < INT64_MIN || value > INT64_MAX) {
        throw new RangeError(`integer reply out of 64-bit range: ${value}`);
      }
    } else if (!Number.isSafeInteger(value)) {
      throw new TypeError(`integer reply must be a safe integer, got ${value}`);
    }
    this.#text += ':' + String(value) + '\r\n';
    return this;
  }

  /** A bulk string from a byte string or bytes; `null` is the null bulk string. */
  bulk(value: string | Buffer | null): this {
    if (value === null) return this.nil();
    if (typeof value === 'string') {
      this.#text += '$' + String(value.length) + '\r\n' + value + '\r\n';
    } else if (value.length <= INLINE_BUFFER_MAX) {
      this.#text += '$' + String(value.length) + '\r\n' + value.toString('latin1') + '\r\n';
    } else {
      this.#text += '$' + String(value.length) + '\r\n';
      this.#flushText();
      this.#parts.push(value);
      this.#partsBytes += value.length;
      this.#text = '\r\n';
    }
    return this;
  }

  /** The null bulk string: `$-1` under RESP2, `_` under RESP3. */
  nil(): this {
    this.#text += this.version === 3 ? '_\r\n' : '$-1\r\n';
    return this;
  }

  /** The null array: `*-1` under RESP2, `_` under RESP3. */
  nilArray(): this {
    this.#text += this.version === 3 ? '_\r\n' : '*-1\r\n';
    return this;
  }

  /** The header of an array of `length` replies; write them next. */
  arrayHeader(length: number): this {
    this.#text += '*' + String(checkLength(length)) + '\r\n';
    return this;
  }

  /** The header of a map of `size` entries; write key, value, ... next (2×size items in RESP2). */
  mapHeader(size: number): this {
    const n = checkLength(size);
    this.#text += this.version === 3 ? '%' + String(n) + '\r\n' : '*' + String(n * 2) + '\r\n';
    return this;
  }

  /** The header of a push of `length` replies (an array in RESP2); write them next. */
  pushHeader(length: number): this {
    const n = checkLength(length);
    this.#text += (this.version === 3 ? '>' : '*') + String(n) + '\r\n';
    return this;
  }

  /**
   * A boolean: RESP3 `#t`/`#f`, `:1`/`:0` under RESP2. PROTOCOL.md's commands answer booleans
   * with integer 1/0 under both versions; this is for replies that are RESP3 booleans.
   */
  boolean(value: boolean): this {
    if (this.version === 3) this.#text += value ? '#t\r\n' : '#f\r\n';
    else this.#text += value ? ':1\r\n' : ':0\r\n';
    return this;
  }

  /** A double: RESP3 `,1.5` (`inf`, `-inf`, `nan`), a bulk string of the same text under RESP2. */
  double(value: number): this {
    const text = Number.isNaN(value)
      ? 'nan'
      : value === Infinity
        ? 'inf'
        : value === -Infinity
          ? '-inf'
          : String(value);
    if (this.version === 3) this.#text += ',' + text + '\r\n';
    else this.bulk(text);
    return this;
  }

  /**
   * Any {@link Reply}, nested as deep as it goes. Throws (TypeError, RangeError) on a value that
   * cannot be encoded, leaving the batch exactly as it was before the call: never half a frame.
   */
  write(reply: Reply): this {
    const parts = this.#parts.length;
    const partsBytes = this.#partsBytes;
    const text = this.#text;
    try {
      this.#write(reply);
    } catch (error) {
      this.#parts.length = parts;
      this.#partsBytes = partsBytes;
      this.#text = text;
      throw error;
    }
    return this;
  }

  /**
   * The batch as one latin1 string (a byte per code unit) when it holds no Buffer part, else
   * as one Buffer; the writer starts a new, empty batch. A socket writes the string with the
   * 'latin1' encoding straight from V8's string, sparing a Buffer per batch.
   */
  take(): string | Buffer {
    if (this.#parts.length > 0) return this.toBuffer();
    const text = this.#text;
    this.#text = '';
    return text;
  }

  /** The batch as one Buffer; the writer starts a new, empty batch. */
  toBuffer(): Buffer {
    let out: Buffer;
    if (this.#parts.length === 0) {
      out = Buffer.from(this.#text, 'latin1');
    } else {
      this.#flushText();
      out = Buffer.allocUnsafe(this.#partsBytes);
      let offset = 0;
      for (const part of this.#parts) {
        offset +=
          typeof part === 'string' ? out.write(part, offset, 'latin1') : part.copy(out, offset);
      }
    }
    this.#parts = [];
    this.#partsBytes = 0;
    this.#text = '';
    return out;
  }

  #write(reply: Reply): void {
    // The commonest replies first: bulk strings and integers.
    if (typeof reply === 'string') {
      this.bulk(reply);
    } else if (typeof reply === 'number' || typeof reply === 'bigint') {
      this.integer(reply);
    } else if (reply === null) {
      this.nil();
    } else if (Buffer.isBuffer(reply)) {
      this.bulk(reply);
    } else if (typeof reply === 'boolean') {
      this.boolean(reply);
    } else if (isReplyArray(reply)) {
      this.arrayHeader(reply.length);
      for (const item of reply) this.#write(item);
    } else if (reply instanceof SessiondError) {
      this.error(reply);
    } else {
      switch (reply.kind) {
        case 'simple':
          this.simple(reply.text);
          break;
        case 'error':
          this.error(reply.code, reply.message);
          break;
        case 'map':
          this.#writeMap(reply.entries);
          break;
        case 'push':
          this.pushHeader(reply.items.length);
          for (const item of reply.items) this.#write(item);
          break;
        case 'double':
          this.double(reply.value);
          break;
        case 'null-array':
          this.nilArray();
          break;
      }
    }
  }

  #writeMap(entries: MapReply['entries']): void {
    this.mapHeader(isPairArray(entries) ? entries.length : entries.size);
    for (const [key, value] of entries) {
      this.#write(key);
      this.#write(value);
    }
  }

  #flushText(): void {
    if (this.#text.length === 0) return;
    this.#parts.push(this.#text);
    this.#partsBytes += this.#text.length;
    this.#text = '';
  }
}

/**
 * Encodes one reply on its own. Throws as {@link ReplyWriter.write} does.
 *
 * @example
 * encodeReply(['sid1', 'sid2'], 2); // *2\r\n$4\r\nsid1\r\n$4\r\nsid2\r\n
 */
export function encodeReply(reply: Reply, version: RespVersion = 2): Buffer {
  return new ReplyWriter(version).write(reply).toBuffer();
}

// Array.isArray does not narrow readonly arrays out of a union; these do.
function isReplyArray(reply: Reply): reply is readonly Reply[] {
  return Array.isArray(reply);
}

function isPairArray(
  entries: MapReply['entries'],
): entries is readonly (readonly [Reply, Reply])[] {
  return Array.isArray(entries);
}

function checkLength(length: number): number {
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`aggregate length must be a non-negative integer, got ${length}`);
  }
  return length;
}

/**
 * Text for a status or error line: CR and LF become spaces (defends against reply injection: a
 * message quoting client input cannot end the line and forge a reply), then UTF-8 bytes as a
 * byte string.
 */
function wireText(text: string): string {
  // Most lines (OK, PONG, the code words' messages) are plain ASCII: one scan and no copy.
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x0d || code === 0x0a || code > 0x7f) return escapedWireText(text);
  }
  return text;
}

function escapedWireText(text: string): string {
  const line = text.replace(/[\r\n]/g, ' ');
  // eslint-disable-next-line no-control-regex -- ASCII is its own UTF-8; only the rest needs work
  return /[^\x00-\x7f]/.test(line) ? Buffer.from(line, 'utf8').toString('latin1') : line;
}
