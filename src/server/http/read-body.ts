import { Buffer } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { limitError, syntaxError } from '../../errors.ts';
import { HttpError } from './http-error.ts';

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
 * @throws LIMIT (413) past `maxBytes`; ERR (400) for bytes that are not UTF-8 or not JSON, or a
 * body cut short by the client
 */
export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const bytes = await readBody(request, maxBytes);
  if (bytes.length === 0) return undefined;
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
