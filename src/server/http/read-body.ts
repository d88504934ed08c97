import { Buffer } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { limitError, syntaxError } from '../../errors.ts';
import { HttpError } from './http-error.ts';

/**
 * The deepest nesting of a request body; the deepest valid one is 3, as in
 * `{"args": [{"base64": ""}]}`. Checked before parsing: defends against a body of brackets
 * costing seconds of blocked event loop and ~30 times its size in heap (16 MiB of `[` parses
 * into 8M arrays).
 */
const MAX_JSON_DEPTH = 8;
/**
 * The default most values (arrays, objects and comma-separated items) in a request body: twice
 * the default maxArgs, room for that many `{"base64"}` arguments. Defends against a flat body of
 * tiny values (`[[],[],...]`) amplifying into hundreds of megabytes of heap.
 */
export const DEFAULT_MAX_JSON_VALUES = 2 * 64 * 1024;

/** Whether the request carries a body at all (RFC 9112 section 6.3). */
export function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return (
    request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  );
}

/**
 * Reads a request body of at most `maxBytes` and parses it as JSON; `undefined` when empty.
 * A declared Content-Length over the limit is refused before a byte is read; a chunked body is
 * counted as it arrives, and reading stops at the first chunk past the limit, so a client cannot
 * make the server buffer more than `maxBytes` (defends against memory exhaustion).
 *
 * @throws LIMIT (413) past `maxBytes` or past `maxValues` values; ERR (400) for
 * bytes that are not UTF-8 or not JSON, nesting deeper than {@link MAX_JSON_DEPTH}, or a body
 * cut short by the client
 */
export async function readJsonBody(
  request: IncomingMessage,
  maxBytes: number,
  maxValues = DEFAULT_MAX_JSON_VALUES,
): Promise<unknown> {
  const bytes = await readBody(request, maxBytes);
  if (bytes.length === 0) return undefined;
  checkJsonShape(bytes, maxValues);
  let text: string;
  try {
    // Fatal: invalid UTF-8 is refused rather than replaced, so no value changes on the way in.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw syntaxError('request body is not UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw syntaxError('request body is not valid JSON');
  }
}

function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () => limitError('request body size (maxBodyBytes)', maxBytes);
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) {
    request.pause();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('close', onClose);
      request.off('error', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        stop();
        request.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    // The client went away mid-body: nobody is left to answer, and it is not a server fault.
    const onClose = () => {
      stop();
      reject(new HttpError(400, 'ERR', 'request body was cut short'));
    };
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('close', onClose);
    request.on('error', onClose);
  });
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * Refuses a body nesting deeper than {@link MAX_JSON_DEPTH} or holding more than
 * `maxValues` values, by one pass over its bytes that skips strings with indexOf:
 * linear, and allocating nothing. Malformed JSON passes here and fails in JSON.parse.
 */
function checkJsonShape(bytes: Buffer, maxValues: number): void {
  let depth = 0;
  let values = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      i = stringEnd(bytes, i);
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > MAX_JSON_DEPTH) {
        throw syntaxError(`request body nests deeper than ${MAX_JSON_DEPTH}`);
      }
      values++;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--;
    } else if (c === COMMA) {
      values++;
    }
    if (values > maxValues) throw limitError('values in a request body', maxValues);
  }
}

/** The index of the quote closing the string opened at `open` (the end if it is never closed). */
function stringEnd(bytes: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = bytes.indexOf(QUOTE, at + 1);
    if (at < 0) return bytes.length;
    let backslashes = 0;
    while (bytes[at - 1 - backslashes] === BACKSLASH) backslashes++;
    // An even run of backslashes escapes itself, not the quote.
    if (backslashes % 2 === 0) return at;
  }
}
