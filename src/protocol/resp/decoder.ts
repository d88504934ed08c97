import { Buffer, constants as bufferConstants } from 'node:buffer';
import { ProtocolError, type ProtocolErrorReason } from './protocol-error.ts';

/**
 * One request: the command name and its arguments as byte strings (each UTF-16 code unit holds
 * one byte, 0..255, decoded as latin1), so values stay binary-safe and `.length` counts bytes.
 */
export type Command = string[];

/** The sizes a client may send; anything over one is a {@link ProtocolError}. */
export interface DecoderLimits {
  /** Longest bulk argument, in bytes (Redis: proto-max-bulk-len). */
  maxBulkLength: number;
  /** Most arguments in one request, the command name included. */
  maxArgs: number;
  /** Longest inline line, in bytes, without its line ending (Redis: PROTO_INLINE_MAX_SIZE). */
  maxInlineLength: number;
  /**
   * Largest multibulk request, in bytes, all its framing included, refused as soon as a length
   * line makes it certain (Redis: client-query-buffer-limit). Inline lines have maxInlineLength.
   */
  maxQueryBuffer: number;
}

/**
 * The limits a decoder starts with.
 *
 * - `maxBulkLength` 8 MiB: session values are cookies' worth of state or a serialized blob, kilobytes
 *   in practice; Redis's 512 MiB would let any client make the server hold half a gigabyte. Keep it
 *   above the engine's own value limit, so an oversized value earns a `LIMIT` reply instead of a
 *   dropped connection.
 * - `maxArgs` 65536: `SET sid name value ...` with 32767 pairs is far beyond any session, and the
 *   count bounds the JS strings one request can create whatever its byte size (Redis allows 1M+).
 * - `maxInlineLength` 64 KiB: Redis's PROTO_INLINE_MAX_SIZE; inline requests are typed by people.
 * - `maxQueryBuffer` 16 MiB: room for one maximal value plus the rest of its command, with slack;
 *   it bounds what one slow or hostile connection pins in memory (Redis allows 1 GiB).
 */
export const DEFAULT_DECODER_LIMITS: Readonly<DecoderLimits> = Object.freeze({
  maxBulkLength: 8 * 1024 * 1024,
  maxArgs: 64 * 1024,
  maxInlineLength: 64 * 1024,
  maxQueryBuffer: 16 * 1024 * 1024,
});

const CR = 0x0d;
const LF = 0x0a;
const STAR = 0x2a;
const DOLLAR = 0x24;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/** Longest length field Redis's string2ll reads: "-9223372036854775808". */
const MAX_LENGTH_FIELD = 20;
/** First size of the owned query buffer; it doubles from here as bytes arrive. */
const MIN_CAPACITY = 16 * 1024;
/** An owned query buffer this big is given back once it is mostly empty. */
const SHRINK_ABOVE = 256 * 1024;
/**
 * Arguments shorter than this are cut from one string of the buffered bytes: V8 copies a
 * substring under 13 characters (SlicedString::kMinLength) rather than pointing into its parent,
 * so nothing kept later pins the batch, and a substring costs no call into C++. Longer ones
 * (session ids, values) get their own latin1Slice.
 */
const SHORT_ARG = 13;
/** The most buffered bytes turned into that one string at a time. */
const TEXT_WINDOW = 4096;

// #readLength's answers other than a value (a value is >= -1).
const INCOMPLETE = -2;
const TOO_LONG = -3;
const INVALID = -4;

const EMPTY = Buffer.alloc(0);

/**
 * Buffer's own latin1 decoder, which toString('latin1') wraps in argument checks costing ~10% of
 * decode time. Node has had it since its early days; @types/node does not declare it.
 */
type Latin1Slicing = Buffer & { latin1Slice(start: number, end: number): string };

/**
 * Names, upper-case ASCII letters only (command names), that a {@link RequestDecoder} returns as
 * these very strings when a request's first argument spells one in any case. The server looks
 * names up in Maps on every command: a constant string is hashed once, and no string is made.
 */
export class KnownNames {
  /** By length: the names of that length. */
  #byLength: Array<string[] | undefined> = [];

  constructor(names: Iterable<string>) {
    for (const name of names) {
      if (!/^[A-Z]+$/.test(name)) throw new RangeError(`not an upper-case ASCII name: ${name}`);
      (this.#byLength[name.length] ??= []).push(name);
    }
  }

  /** The name that `buf[start..end)` spells, ignoring ASCII case; undefined if none. */
  match(buf: Buffer, start: number, end: number): string | undefined {
    const candidates = this.#byLength[end - start];
    if (candidates === undefined) return undefined;
    next: for (const name of candidates) {
      for (let i = 0; i < name.length; i++) {
        // Clearing bit 5 upper-cases a-z and maps no other byte onto A-Z.
        if (((buf[start + i] as number) & 0xdf) !== name.charCodeAt(i)) continue next;
      }
      return name;
    }
    return undefined;
  }
}

/**
 * Decodes the requests a client sends to the server: RESP multibulk (`*N\r\n$len\r\n...`, what
 * every client library sends) and inline commands (`PING\r\n`, telnet, `redis-cli` in some modes),
 * with Redis's rules and messages, incrementally: push bytes as they arrive, pull whole commands.
 *
 * After a protocol error the decoder is dead: `next()` returns the same {@link ProtocolError}
 * forever and `push()` drops its input. Reply with the error, then close the connection.
 *
 * Cost: JS never loops over payload bytes: a bulk argument is cut out by its declared length, and
 * while one trickles in, each push costs a length comparison (an inline line is searched with
 * indexOf, resuming where the last search stopped). A bulk argument is copied into a JS string
 * once and, only when it spans chunks, once more into the decoder's own buffer; that buffer grows
 * with the bytes actually received (to at most twice them), never with a declared length.
 *
 * Errors: `ERR Protocol error: ...` (see {@link ProtocolErrorReason}).
 *
 * @example
 * socket.on('data', (chunk) => {
 *   decoder.push(chunk);
 *   for (let got = decoder.next(); got !== undefined; got = decoder.next()) {
 *     if (got instanceof ProtocolError) { writer.error(got); flushAndClose(); return; }
 *     dispatch(got, writer);
 *   }
 *   socket.write(writer.toBuffer());
 * });
 */
export class RequestDecoder {
  #limits: DecoderLimits;

  // The unparsed bytes are #buf[#start..#end). #buf is either the caller's last chunk, borrowed
  // until it is used up, or storage of our own (#owned) that later chunks are appended to.
  #buf: Buffer = EMPTY;
  #owned = false;
  #start = 0;
  #end = 0;

  // A multibulk request in progress: the arguments so far, how many are still to come, the
  // length of the bulk whose payload is awaited (-1 while its `$` line is), and the request's
  // bytes so far (for maxQueryBuffer).
  #args: Command | undefined;
  #argsLeft = 0;
  #bulkLength = -1;
  #requestBytes = 0;

  /** How far past #start an unterminated inline line has been searched for its '\n'. */
  #scanned = 0;
  /** Byte count of the length line #readLength last parsed, CRLF included. */
  #lineLength = 0;
  #error: ProtocolError | undefined;
  #names: KnownNames | undefined;
  /** #buf[#textStart..#textStart + #text.length) as a string, until the buffer changes. */
  #text: string | undefined;
  #textStart = 0;

  /**
   * @param limits - overrides for {@link DEFAULT_DECODER_LIMITS}; each must be a positive safe
   *   integer (and `maxBulkLength` at most the longest string V8 can make), else RangeError.
   * @param names - command names to return upper-cased and shared (multibulk requests only)
   */
  constructor(limits: Partial<DecoderLimits> = {}, names?: KnownNames) {
    this.#limits = checkLimits({ ...DEFAULT_DECODER_LIMITS, ...limits });
    this.#names = names;
  }

  /** The limits in force. */
  get limits(): Readonly<DecoderLimits> {
    return { ...this.#limits };
  }

  /**
   * Changes limits from the next length line or inline line on, e.g. tight ones until a client
   * has authenticated and the defaults after (Redis caps unauthenticated requests the same way).
   * Throws RangeError on a limit that is not a positive safe integer.
   */
  setLimits(limits: Partial<DecoderLimits>): void {
    this.#limits = checkLimits({ ...this.#limits, ...limits });
  }

  /** Bytes received and not yet part of a returned command (a partial request's tail). */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /** The protocol error that ended this decoder, if one did. */
  get error(): ProtocolError | undefined {
    return this.#error;
  }

  /**
   * Adds bytes read from the client. Keeps a reference to `chunk` until `next()` has returned
   * `undefined`, so do not reuse its memory before then (Node's 'data' chunks are never reused).
   */
  push(chunk: Buffer): void {
    if (this.#error !== undefined || chunk.length === 0) return;
    this.#text = undefined;
    const live = this.#end - this.#start;
    if (live === 0) {
      // Nothing pending: parse straight from the chunk, copying nothing.
      this.#buf = chunk;
      this.#owned = false;
      this.#start = 0;
      this.#end = chunk.length;
      return;
    }
    const required = live + chunk.length;
    if (!this.#owned || required > this.#buf.length) {
      this.#reallocate(required, true);
    } else if (this.#end + chunk.length > this.#buf.length) {
      if (this.#start >= live) {
        // Moving the tail costs no more than the bytes already consumed, so appends stay linear.
        this.#buf.copy(this.#buf, 0, this.#start, this.#end);
        this.#start = 0;
        this.#end = live;
      } else {
        this.#reallocate(required, true);
      }
    }
    chunk.copy(this.#buf, this.#end);
    this.#end += chunk.length;
  }

  /**
   * The next complete command; `undefined` when more bytes are needed; a {@link ProtocolError}
   * when the input is not RESP, now and on every later call. Empty inline lines, `*0` and `*-1`
   * are skipped, as Redis skips them.
   */
  next(): Command | ProtocolError | undefined {
    if (this.#error !== undefined) return this.#error;
    for (;;) {
      if (this.#args === undefined) {
        if (this.#start === this.#end) return this.#suspend();
        if (this.#buf[this.#start] !== STAR) {
          const line = this.#readInline();
          if (line === undefined) return this.#suspend();
          if (line instanceof ProtocolError || line.length > 0) return line;
          continue;
        }
        const count = this.#readLength();
        if (count === INCOMPLETE) return this.#suspend();
        if (count === TOO_LONG) return this.#fail('multibulk-length', 'too big mbulk count string');
        if (count === INVALID || count > this.#limits.maxArgs) {
          return this.#fail('multibulk-length', 'invalid multibulk length');
        }
        this.#start += this.#lineLength;
        // `*0` and the null array `*-1` carry no command.
        if (count <= 0) continue;
        // No array of `count` slots up front: defends against a few bytes claiming a huge count
        // and making us allocate for arguments that never come.
        this.#args = [];
        this.#argsLeft = count;
        this.#requestBytes = this.#lineLength;
      }

      const args = this.#args;
      while (this.#argsLeft > 0) {
        if (this.#bulkLength < 0) {
          if (this.#start === this.#end) return this.#suspend();
          const prefix = this.#buf[this.#start] as number;
          if (prefix !== DOLLAR) {
            return this.#fail('bulk-prefix', `expected '$', got '${printable(prefix)}'`);
          }
          const length = this.#readLength();
          if (length === INCOMPLETE) return this.#suspend();
          if (length === TOO_LONG) return this.#fail('bulk-length', 'too big bulk count string');
          if (length < 0 || length > this.#limits.maxBulkLength) {
            return this.#fail('bulk-length', 'invalid bulk length');
          }
          const requestBytes = this.#requestBytes + this.#lineLength + length + 2;
          // Refused on the declared size, before the payload arrives: defends against a client
          // pinning memory with a request that can never be accepted.
          if (requestBytes > this.#limits.maxQueryBuffer) {
            return this.#fail('query-buffer', 'too big request');
          }
          this.#requestBytes = requestBytes;
          this.#start += this.#lineLength;
          this.#bulkLength = length;
        }
        const start = this.#start;
        const stop = start + this.#bulkLength;
        // Only a length check while the payload trickles in: no rescans of what has arrived.
        if (this.#end - start < this.#bulkLength + 2) return this.#suspend();
        // Redis skips these two bytes unchecked; checking them defends against a wrong length
        // silently shifting the frame and smuggling the rest of the payload in as commands.
        if (this.#buf[stop] !== CR || this.#buf[stop + 1] !== LF) {
          return this.#fail('bulk-terminator', 'expected CRLF after bulk string');
        }
        const known = args.length === 0 ? this.#names?.match(this.#buf, start, stop) : undefined;
        args.push(known ?? this.#slice(start, stop));
        this.#start = stop + 2;
        this.#bulkLength = -1;
        this.#argsLeft--;
      }
      this.#args = undefined;
      return args;
    }
  }

  /** The bytes buf[start..stop) as a byte string (see {@link SHORT_ARG}). */
  #slice(start: number, stop: number): string {
    if (stop - start < SHORT_ARG) {
      let text = this.#text;
      if (text === undefined || stop > this.#textStart + text.length || start < this.#textStart) {
        const end = Math.min(this.#end, start + TEXT_WINDOW);
        text = this.#text = (this.#buf as Latin1Slicing).latin1Slice(start, end);
        this.#textStart = start;
      }
      return text.substring(start - this.#textStart, stop - this.#textStart);
    }
    return (this.#buf as Latin1Slicing).latin1Slice(start, stop);
  }

  /**
   * Parses the length line at #start (`*` or `$`, then a canonical integer, then CRLF), as
   * Redis's string2ll does: no sign but a leading '-', no spaces, no leading zeros, no "-0".
   * Returns the value (only -1 of the negatives; other negatives are INVALID), or INCOMPLETE,
   * TOO_LONG or INVALID; sets #lineLength. Decides at the first decisive byte, so the answer does
   * not depend on how the input was split into chunks.
   */
  #readLength(): number {
    const buf = this.#buf;
    const end = this.#end;
    const first = this.#start + 1;
    let i = first;
    let negative = false;
    if (i < end && buf[i] === MINUS) {
      negative = true;
      i++;
    }
    const digits = i;
    let value = 0;
    for (; ; i++) {
      if (i >= end) return INCOMPLETE;
      const c = buf[i] as number;
      if (c === CR) break;
      // The field is bounded before its CR arrives, so garbage cannot make us buffer and rescan.
      if (i - first >= MAX_LENGTH_FIELD) return TOO_LONG;
      if (c < ZERO || c > NINE) return INVALID;
      // Past 2^53 this loses precision, but every limit is far below that.
      value = value * 10 + (c - ZERO);
    }
    if (i + 1 >= end) return INCOMPLETE;
    if (buf[i + 1] !== LF) return INVALID;
    const count = i - digits;
    if (count === 0 || (buf[digits] === ZERO && (count > 1 || negative))) return INVALID;
    this.#lineLength = i + 2 - this.#start;
    if (negative) return value === 1 ? -1 : INVALID;
    return value;
  }

  /**
   * Reads one inline line (up to '\n', an optional '\r' before it dropped) and splits it into
   * words. Returns undefined while the line is incomplete.
   */
  #readInline(): Command | ProtocolError | undefined {
    const { maxInlineLength, maxArgs } = this.#limits;
    const start = this.#start;
    // A line of maxInlineLength bytes plus "\r\n" fits; look no further than that.
    const limit = Math.min(this.#end, start + maxInlineLength + 2);
    const from = start + this.#scanned;
    const found = this.#buf.subarray(from, limit).indexOf(LF);
    if (found === -1) {
      this.#scanned = limit - start;
      const pending = this.#end - start;
      // One byte over the limit may still be the '\r' of a line exactly at it.
      if (
        pending > maxInlineLength + 1 ||
        (pending === maxInlineLength + 1 && this.#buf[this.#end - 1] !== CR)
      ) {
        return this.#fail('inline-length', 'too big inline request');
      }
      return undefined;
    }
    const newline = from + found;
    const stop = newline > start && this.#buf[newline - 1] === CR ? newline - 1 : newline;
    if (stop - start > maxInlineLength) {
      return this.#fail('inline-length', 'too big inline request');
    }
    const line = this.#buf.toString('latin1', start, stop);
    this.#start = newline + 1;
    this.#scanned = 0;
    const words = splitInline(line);
    if (words === undefined) return this.#fail('inline-quotes', 'unbalanced quotes in request');
    if (words.length > maxArgs) {
      return this.#fail('inline-args', 'too many arguments in inline request');
    }
    const name = words[0]?.toLowerCase();
    // A browser page can POST to this port, and every HTTP request carries a Host line: defends
    // against cross-protocol attacks from web pages, as Redis does (it kills such clients).
    if (name === 'post' || name === 'host:') {
      return this.#fail('http', 'HTTP request sent to the RESP port');
    }
    return words;
  }

  /** Keeps what is left for the next push: copies a borrowed tail, lets go of a big idle buffer. */
  #suspend(): undefined {
    const live = this.#end - this.#start;
    if (live === 0) {
      this.#text = undefined;
      this.#buf = EMPTY;
      this.#owned = false;
      this.#start = 0;
      this.#end = 0;
    } else if (!this.#owned || (this.#buf.length > SHRINK_ABOVE && live * 4 < this.#buf.length)) {
      this.#reallocate(live, false);
    }
    return undefined;
  }

  /**
   * Moves the live bytes to the start of new storage with room for `required` bytes; when
   * `grow`, at least double the old storage, so appends cost amortized linear time.
   */
  #reallocate(required: number, grow: boolean): void {
    const doubled = grow && this.#owned ? this.#buf.length * 2 : 0;
    let capacity = Math.max(required, MIN_CAPACITY, doubled);
    // A bulk payload in progress says how much it needs: grow towards that and no further (and
    // when these bytes complete it, to just what they take: the rest is consumed straight away).
    const need = this.#args !== undefined && this.#bulkLength >= 0 ? this.#bulkLength + 2 : 0;
    if (need > 0) capacity = Math.min(capacity, Math.max(need, required));
    // allocUnsafe is safe here: bytes past #end are never read.
    const storage = Buffer.allocUnsafe(capacity);
    this.#text = undefined;
    this.#buf.copy(storage, 0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = storage;
    this.#owned = true;
  }

  #fail(reason: ProtocolErrorReason, detail: string): ProtocolError {
    this.#error = new ProtocolError(reason, detail);
    this.#text = undefined;
    this.#buf = EMPTY;
    this.#owned = false;
    this.#start = 0;
    this.#end = 0;
    this.#args = undefined;
    return this.#error;
  }
}

function checkLimits(limits: DecoderLimits): DecoderLimits {
  for (const [name, value] of Object.entries(limits) as [string, unknown][]) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive safe integer, got ${String(value)}`);
    }
  }
  if (limits.maxBulkLength > bufferConstants.MAX_STRING_LENGTH) {
    throw new RangeError(
      `maxBulkLength must be at most ${bufferConstants.MAX_STRING_LENGTH}, the longest string V8 makes`,
    );
  }
  return limits;
}

/** A byte as Redis's "%c" would show it, escaped when not printable ASCII. */
function printable(byte: number): string {
  // Escaped because the message is echoed to the client and into logs: defends against
  // control bytes reaching terminals.
  return byte > 0x20 && byte < 0x7f
    ? String.fromCharCode(byte)
    : `\\x${byte.toString(16).padStart(2, '0')}`;
}

const SPACE = 0x20;
const TAB = 0x09;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;
const LOWER_X = 0x78;

/** A word of an inline line with no quotes: starts at a non-space, ends at ' ', \t, \r or \n. */
const PLAIN_WORD = /[^ \t\n\v\f\r][^ \t\n\r]*/g;

/** C's isspace() in the "C" locale (space, \t \n \v \f \r), which Redis uses between words. */
function isSpace(c: number): boolean {
  return c === SPACE || (c >= TAB && c <= CR);
}

function isHexDigit(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** The byte a backslash escape in double quotes stands for (Redis: \n \r \t \b \a, else itself). */
function unescape(c: number): string {
  switch (c) {
    case 0x6e:
      return '\n';
    case 0x72:
      return '\r';
    case 0x74:
      return '\t';
    case 0x62:
      return '\b';
    case 0x61:
      return '\x07';
    default:
      return String.fromCharCode(c);
  }
}

/**
 * Splits an inline line into words by the rules of Redis's sdssplitargs: blanks separate words;
 * "double quotes" take \xHH, \n, \r, \t, \b, \a and \<any> escapes; 'single quotes' take \' only;
 * a quote may open mid-word but a closing quote must be followed by a blank or the end.
 * Returns undefined for unbalanced quotes. Unlike Redis, which reads a C string and stops at the
 * first NUL, a NUL byte here is an ordinary byte: nothing the client sent is silently dropped.
 */
function splitInline(line: string): Command | undefined {
  if (!line.includes('"') && !line.includes("'")) return line.match(PLAIN_WORD) ?? [];
  const words: Command = [];
  const n = line.length;
  let i = 0;
  for (;;) {
    while (i < n && isSpace(line.charCodeAt(i))) i++;
    if (i === n) return words;
    let word = '';
    let quote = 0;
    for (;;) {
      if (i === n) {
        if (quote !== 0) return undefined;
        break;
      }
      const c = line.charCodeAt(i);
      if (quote === DQUOTE) {
        if (
          c === BACKSLASH &&
          i + 3 < n &&
          line.charCodeAt(i + 1) === LOWER_X &&
          isHexDigit(line.charCodeAt(i + 2)) &&
          isHexDigit(line.charCodeAt(i + 3))
        ) {
          word += String.fromCharCode(Number.parseInt(line.slice(i + 2, i + 4), 16));
          i += 4;
        } else if (c === BACKSLASH && i + 1 < n) {
          word += unescape(line.charCodeAt(i + 1));
          i += 2;
        } else if (c === DQUOTE) {
          i++;
          if (i < n && !isSpace(line.charCodeAt(i))) return undefined;
          break;
        } else {
          word += line[i];
          i++;
        }
      } else if (quote === SQUOTE) {
        if (c === BACKSLASH && i + 1 < n && line.charCodeAt(i + 1) === SQUOTE) {
          word += "'";
          i += 2;
        } else if (c === SQUOTE) {
          i++;
          if (i < n && !isSpace(line.charCodeAt(i))) return undefined;
          break;
        } else {
          word += line[i];
          i++;
        }
      } else if (c === SPACE || c === TAB || c === CR || c === LF) {
        i++;
        break;
      } else if (c === DQUOTE || c === SQUOTE) {
        quote = c;
        i++;
      } else {
        word += line[i];
        i++;
      }
    }
    words.push(word);
  }
}
