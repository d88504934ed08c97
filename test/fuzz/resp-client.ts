/**
 * A small RESP client for the fuzzer's honest traffic: one command at a time, its reply as a
 * plain value. It imports nothing of the server, so the control worker starts quickly.
 */
import { connect, type Socket } from 'node:net';
import { readRespReplies } from './wire.ts';

/** A command as RESP multibulk, arguments as latin1 bytes. */
export function encodeCommand(args: ReadonlyArray<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg, 'latin1') : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** A reply as a value: integers as numbers, bulk and status strings as text, nil as null. */
export type Value = number | string | null;

export class RespClient {
  #socket: Socket;
  #buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<RespClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RespClient(socket);
  }

  /** Runs one command; rejects with the server's error line, or when the connection closes. */
  async call(...args: string[]): Promise<Value> {
    this.#socket.write(encodeCommand(args));
    for (;;) {
      const { replies, end, malformed } = readRespReplies(this.#buffer);
      if (malformed) throw new Error(`not RESP: ${malformed}`);
      const reply = replies[0];
      if (reply) {
        this.#buffer = this.#buffer.subarray(replies.length === 1 ? end : 0);
        if (replies.length > 1) throw new Error('more replies than commands');
        switch (reply.type) {
          case ':':
            return Number(reply.line);
          case '$':
            return reply.value === undefined ? null : reply.value.toString('latin1');
          case '+':
            return reply.line;
          case '_':
            return null;
          case '-':
            throw new Error(reply.line);
          default:
            throw new Error(`unexpected reply ${reply.type}${reply.line}`);
        }
      }
      if (this.#closed) throw new Error('connection closed');
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  close(): void {
    this.#socket.destroy();
  }
}
