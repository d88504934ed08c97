/**
 * Raw sockets for the fuzzer, and tolerant readers of what the server sends back: RESP replies
 * and HTTP responses are split and classified, never trusted to be well formed.
 */
import { connect, type Socket } from 'node:net';
import { ERROR_CODES } from '../../src/errors.ts';

/** The error code words of PROTOCOL.md: every error the server sends must begin with one. */
export const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** What a fuzz socket keeps of the bytes it receives; the rest is only counted. */
const KEEP_BYTES = 256 * 1024;

/**
 * Runs `use` on a freshly opened wire and resets the wire afterwards, whatever happens;
 * 'connect-failed' when it could not be opened (the server at its client limit, say).
 */
export async function withWire(
  wire: Wire | null,
  use: (wire: Wire) => Promise<string>,
): Promise<string> {
  if (!wire) return 'connect-failed';
  try {
    return await use(wire);
  } finally {
    wire.reset();
  }
}

/**
 * One client socket that sends what it is given and records what comes back. Every socket
 * registers in `open` so a stopping run can destroy the stragglers.
 */
export class Wire {
  readonly socket: Socket;
  #chunks: Buffer[] = [];
  #kept = 0;
  received = 0;
  closed = false;
  #waiters = new Set<() => void>();

  private constructor(socket: Socket, open: Set<Wire>) {
    this.socket = socket;
    open.add(this);
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      if (this.#kept < KEEP_BYTES) {
        this.#chunks.push(chunk.subarray(0, KEEP_BYTES - this.#kept));
        this.#kept += Math.min(chunk.length, KEEP_BYTES - this.#kept);
      }
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      open.delete(this);
      this.#wake();
    });
    // Resets and refusals are outcomes the caller reads from `closed`, not failures.
    socket.on('error', () => {});
  }

  /** Connects to 127.0.0.1:`port`; null when the connection was refused or failed. */
  static async open(port: number, open: Set<Wire>): Promise<Wire | null> {
    const socket = connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    if (!ok) {
      socket.destroy();
      return null;
    }
    return new Wire(socket, open);
  }

  /** The bytes received so far (at most the first 256 KiB). */
  get bytes(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  /**
   * Writes `bytes`, waiting for the socket to drain when it asks to: the fuzzer's own memory
   * must not grow with a server that stops reading. False if it closed or did not drain in `ms`.
   */
  async write(bytes: Buffer | string, ms = 5000): Promise<boolean> {
    if (this.closed || this.socket.destroyed) return false;
    if (this.socket.write(bytes)) return true;
    return this.until(() => this.socket.writableLength === 0, ms, 'drain');
  }

  /**
   * Resolves true once `done()` holds, false when the socket closes first or `ms` pass. `on`:
   * what to re-check after: 'data' (and close), or 'drain'.
   */
  until(done: () => boolean, ms: number, on: 'data' | 'drain' = 'data'): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const finish = (result: boolean) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        this.socket.off('drain', check);
        resolve(result);
      };
      const check = () => {
        if (done()) finish(true);
        else if (this.closed) finish(false);
      };
      const timer = setTimeout(() => finish(done()), ms);
      this.#waiters.add(check);
      if (on === 'drain') this.socket.on('drain', check);
    });
  }

  /** Resolves true once the server has closed the connection, false after `ms`. */
  closedWithin(ms: number): Promise<boolean> {
    return this.until(() => this.closed, ms);
  }

  /**
   * Waits until the connection closes or nothing has arrived for `quietMs` (at most `ms` in
   * all): the end of an answer whose length the caller cannot know.
   */
  async settle(quietMs: number, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    let seen = -1;
    while (!this.closed && seen !== this.received && Date.now() < deadline) {
      seen = this.received;
      await this.until(() => this.closed, Math.min(quietMs, Math.max(1, deadline - Date.now())));
    }
  }

  /** Closes abruptly (a TCP reset), as a crashed client would. */
  reset(): void {
    // After end(), Node 24's resetAndDestroy() leaks the handle: the process spins and never
    // exits. A socket already ending is destroyed instead.
    if (this.socket.destroyed) return;
    if (this.socket.writableEnded) this.socket.destroy();
    else this.socket.resetAndDestroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

/**
 * One top-level RESP reply: its type byte, its first line (for an error, code and message) and,
 * for a bulk string, its bytes.
 */
export interface RespReply {
  type: string;
  line: string;
  value?: Buffer;
}

/**
 * Splits RESP replies, nested ones skipped whole. `replies` are the complete top-level replies,
 * which end at `end`; `malformed` is set when the bytes are not RESP at all (a finding: the
 * server must only speak RESP on this port).
 */
export function readRespReplies(bytes: Buffer): {
  replies: RespReply[];
  end: number;
  malformed?: string;
} {
  const replies: RespReply[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = skipReply(bytes, at);
    if (end === undefined) break;
    if (typeof end === 'string') return { replies, end: at, malformed: end };
    const eol = bytes.indexOf('\r\n', at);
    const type = String.fromCharCode(bytes[at]!);
    const line = bytes.toString('latin1', at + 1, eol);
    replies.push(
      type === '$' && line !== '-1'
        ? { type, line, value: bytes.subarray(eol + 2, end - 2) }
        : { type, line },
    );
    at = end;
  }
  return { replies, end: at };
}

/** The end of the reply at `at`; undefined when incomplete; a string saying what is wrong. */
function skipReply(bytes: Buffer, at: number): number | undefined | string {
  const eol = bytes.indexOf('\r\n', at);
  if (eol < 0) return bytes.length - at > 64 * 1024 ? 'a reply line without CRLF' : undefined;
  const type = String.fromCharCode(bytes[at]!);
  const line = bytes.toString('latin1', at + 1, eol);
  let next = eol + 2;
  switch (type) {
    case '+':
    case '-':
    case ':':
    case '_':
    case '#':
    case ',':
    case '(':
      return next;
    case '$':
    case '=':
    case '!': {
      const length = Number(line);
      if (!Number.isInteger(length) || length < -1) return `bad bulk length ${line}`;
      if (length === -1) return next;
      if (bytes.length < next + length + 2) return undefined;
      return next + length + 2;
    }
    case '*':
    case '>':
    case '~':
    case '%':
    case '|': {
      const count = Number(line);
      if (!Number.isInteger(count) || count < -1) return `bad aggregate count ${line}`;
      const items = type === '%' || type === '|' ? count * 2 : count;
      for (let i = 0; i < items; i++) {
        const end = skipReply(bytes, next);
        if (typeof end !== 'number') return end;
        next = end;
      }
      return next;
    }
    default:
      return `unexpected reply type ${JSON.stringify(type)}`;
  }
}

/** The code word of an error reply's line ("ERR", "NOSESSION", ...). */
export function errorCode(reply: RespReply): string {
  return reply.line.split(' ')[0]!;
}

export function isProtocolError(reply: RespReply): boolean {
  return reply.type === '-' && reply.line.startsWith('ERR Protocol error');
}

/** The refusal a client past maxClients gets before the server closes its connection. */
export function isMaxClients(reply: RespReply | undefined): boolean {
  return reply?.type === '-' && reply.line === 'ERR max number of clients reached';
}

/** One HTTP response as received: status, lower-cased headers, body (de-chunked). */
export interface HttpAnswer {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/**
 * Splits HTTP/1.1 responses (interim 1xx ones dropped). A response without a length runs to the
 * end of what was received. `malformed` is set when the bytes are not HTTP responses.
 */
export function readHttpResponses(bytes: Buffer): { responses: HttpAnswer[]; malformed?: string } {
  const responses: HttpAnswer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const head = bytes.indexOf('\r\n\r\n', at);
    if (head < 0) break;
    const lines = bytes.toString('latin1', at, head).split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0]! + ' ');
    if (!status) return { responses, malformed: `not a status line: ${lines[0]!.slice(0, 80)}` };
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    at = head + 4;
    const code = Number(status[1]);
    if (code >= 100 && code < 200) continue;
    let body: Buffer;
    if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = bytes.indexOf('\r\n', at);
        if (eol < 0) break;
        const size = Number.parseInt(bytes.toString('latin1', at, eol), 16);
        if (!Number.isInteger(size)) return { responses, malformed: 'bad chunk size' };
        at = eol + 2;
        if (size === 0) {
          at += 2;
          break;
        }
        parts.push(bytes.subarray(at, at + size));
        at += size + 2;
      }
      body = Buffer.concat(parts);
    } else if (headers.has('content-length')) {
      const length = Number(headers.get('content-length'));
      body = bytes.subarray(at, at + length);
      at += length;
    } else {
      body = bytes.subarray(at);
      at = bytes.length;
    }
    responses.push({ status: code, headers, body });
  }
  return { responses };
}

/**
 * What is wrong with an error response's body, or undefined when it is
 * `{"error": {"code": <a code of PROTOCOL.md>, "message": "..."}}` as docs/http.md requires.
 */
export function badErrorBody(answer: HttpAnswer): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body.toString('utf8'));
  } catch {
    return `status ${answer.status} with a body that is not JSON: ${JSON.stringify(answer.body.toString('latin1', 0, 80))}`;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error?.code !== 'string' || !KNOWN_CODES.has(error.code)) {
    return `status ${answer.status} without a known error code: ${JSON.stringify(parsed).slice(0, 120)}`;
  }
  if (typeof error.message !== 'string') return `status ${answer.status} without a message`;
  return undefined;
}
