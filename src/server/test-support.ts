import { connect, type Socket } from 'node:net';
import { Engine, type EngineOptions } from '../core/engine.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { SessiondServer, type ServerOptions } from './server.ts';

/** A server on a free loopback port over a fresh memory store, for tests. */
export async function startTestServer(
  options: Partial<ServerOptions> = {},
  engineOptions: Partial<EngineOptions> = {},
): Promise<SessiondServer> {
  const engine = new Engine({
    store: new MemoryStore({ indexedVars: ['user'] }),
    ...engineOptions,
  });
  return SessiondServer.start({
    sweepIntervalMs: 0,
    http: false,
    ...options,
    engine,
    resp: { port: 0, ...options.resp },
  });
}

/** A decoded RESP reply, as a test wants to compare it. */
export type Decoded =
  | string
  | number
  | bigint
  | null
  | boolean
  | { error: string }
  | { simple: string }
  | { map: Array<[Decoded, Decoded]> }
  | { push: Decoded[] }
  | Decoded[];

/**
 * A raw RESP connection that sends bytes as given and decodes the replies by hand, so tests see
 * exactly what is on the wire.
 */
export class RawClient {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawClient(socket);
  }

  /** Sends a command as a RESP multibulk request. */
  send(...args: Array<string | Buffer>): void {
    this.socket.write(encodeCommand(args));
  }

  /** Sends a command and decodes its reply. */
  async call(...args: Array<string | Buffer>): Promise<Decoded> {
    this.send(...args);
    return this.reply();
  }

  /** The next reply; rejects if the connection closes first or nothing comes within `ms`. */
  async reply(ms = 5000): Promise<Decoded> {
    const deadline = Date.now() + ms;
    for (;;) {
      const parsed = parse(this.#buffer, 0);
      if (parsed) {
        this.#buffer = this.#buffer.subarray(parsed[1]);
        return parsed[0];
      }
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > deadline) throw new Error('no reply in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Resolves once the server has closed the connection. */
  async closedByServer(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('server did not close the connection');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 20);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

export function encodeCommand(args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === 'string' ? Buffer.from(arg, 'latin1') : arg;
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one reply at `at`: [value, end] or undefined when incomplete. */
function parse(buf: Buffer, at: number): [Decoded, number] | undefined {
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return undefined;
  const type = String.fromCharCode(buf[at]!);
  const line = buf.toString('latin1', at + 1, eol);
  const next = eol + 2;
  switch (type) {
    case '+':
      return [{ simple: line }, next];
    case '-':
      return [{ error: line }, next];
    case ':': {
      const n = BigInt(line);
      return [
        n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
          ? Number(n)
          : n,
        next,
      ];
    }
    case '_':
      return [null, next];
    case '#':
      return [line === 't', next];
    case '$': {
      const length = Number(line);
      if (length < 0) return [null, next];
      if (buf.length < next + length + 2) return undefined;
      return [buf.toString('latin1', next, next + length), next + length + 2];
    }
    case '*':
    case '>':
    case '%': {
      const count = Number(line);
      if (count < 0) return [null, next];
      const items: Decoded[] = [];
      let pos = next;
      for (let i = 0; i < (type === '%' ? count * 2 : count); i++) {
        const item = parse(buf, pos);
        if (!item) return undefined;
        items.push(item[0]);
        pos = item[1];
      }
      if (type === '>') return [{ push: items }, pos];
      if (type === '%') {
        const map: Array<[Decoded, Decoded]> = [];
        for (let i = 0; i < items.length; i += 2) map.push([items[i]!, items[i + 1]!]);
        return [{ map }, pos];
      }
      return [items, pos];
    }
    default:
      throw new Error(`unexpected reply type ${JSON.stringify(type)}`);
  }
}
