import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { SessiondError, syntaxError } from '../errors.ts';
import {
  DEFAULT_DECODER_LIMITS,
  KnownNames,
  RequestDecoder,
  type DecoderLimits,
} from '../protocol/resp/decoder.ts';
import { ProtocolError } from '../protocol/resp/protocol-error.ts';
import {
  mapReply,
  pushReply,
  ReplyWriter,
  simpleString,
  type Reply,
} from '../protocol/resp/encoder.ts';
import type { Auth, Rights } from './auth.ts';
import {
  COMMAND_TABLE,
  commandName,
  runCommand,
  runSpec,
  type CommandContext,
  type CommandSpec,
} from './commands/table.ts';
import type { Logger } from './observability/logger.ts';
import type { Metrics } from './observability/metrics.ts';
import type { PubSub, Subscriber } from './pubsub.ts';
import type { ServerStats } from './stats.ts';

/** What every connection of one server shares. */
export interface ConnectionShared {
  context: CommandContext;
  pubsub: PubSub;
  auth: Auth;
  stats: ServerStats;
  /** Times each command; none: no timing at all. */
  metrics?: Metrics | undefined;
  decoderLimits: Partial<DecoderLimits>;
  /** A client whose unsent replies pass this many bytes is disconnected. */
  maxOutputBuffer: number;
  version: string;
  onError(error: unknown): void;
  /** Where a refused password is logged at `warn`, with the peer's address; none: not logged. */
  logger?: Logger | undefined;
}

/**
 * Until AUTH, requests are held to a few small arguments, as Redis does: defends against
 * unauthenticated clients making the server buffer large requests.
 */
const UNAUTHENTICATED_LIMITS: Partial<DecoderLimits> = {
  maxArgs: 10,
  maxBulkLength: 16 * 1024,
  maxInlineLength: 16 * 1024,
  maxQueryBuffer: 64 * 1024,
};

/** Replies are written once per batch, or sooner when a batch grows past this. */
const FLUSH_AT = 64 * 1024;
/** Commands of a pipeline timed by one clock read (see {@link RespConnection.#timeGroup}). */
const TIMING_GROUP = 16;
/** Commands a RESP connection answers itself, before the command table. */
export const CONNECTION_COMMANDS: ReadonlySet<string> = new Set([
  'AUTH',
  'HELLO',
  'QUIT',
  'RESET',
  'SUBSCRIBE',
  'PSUBSCRIBE',
  'UNSUBSCRIBE',
  'PUNSUBSCRIBE',
  'PING',
]);
const SUBSCRIBED_ALLOWED = new Set([
  'SUBSCRIBE',
  'PSUBSCRIBE',
  'UNSUBSCRIBE',
  'PUNSUBSCRIBE',
  'PING',
  'QUIT',
  'RESET',
]);

/** Every command name the port answers, so the decoder hands them over as shared constants. */
const KNOWN_NAMES = new KnownNames([...COMMAND_TABLE.keys(), ...CONNECTION_COMMANDS]);

/**
 * Each name the port answers, to its table entry, or null for a command the connection answers
 * itself: one lookup a command, with the decoder's shared constant as the key.
 */
const DISPATCH = new Map<string, CommandSpec | null>([
  ...COMMAND_TABLE,
  ...[...CONNECTION_COMMANDS].map((name) => [name, null] as const),
]);

let nextId = 1;

/**
 * One RESP client: decodes its requests, runs them in order through the command table, and
 * writes the replies of each batch (a pipeline's worth) with one socket write. While the socket
 * is congested it stops reading, so a client that never reads its replies cannot make the
 * server buffer without bound; past `maxOutputBuffer` it is disconnected.
 */
export class RespConnection implements Subscriber {
  readonly id = nextId++;
  #socket: Socket;
  #shared: ConnectionShared;
  #decoder: RequestDecoder;
  #writer = new ReplyWriter(2);
  #rights: Rights;
  /** The command table's context for this client; rebuilt when its rights change. */
  #context: CommandContext & { admin: boolean };
  #busy = false;
  #closing = false;
  /** The client has sent its last byte. */
  #peerEnded = false;
  #channels = new Set<string>();
  #patterns = new Set<string>();
  #flushScheduled = false;
  /** Set while shutdown() waits for the command in flight. */
  #onIdle: (() => void) | undefined;
  /** Commands run since the last clock read, and how each ended, for {@link #timeGroup}. */
  #untimed: string[][] = [];
  #untimedFailures: unknown[] = [];

  constructor(socket: Socket, shared: ConnectionShared) {
    this.#socket = socket;
    this.#shared = shared;
    this.#rights = shared.auth.initial();
    this.#context = { ...shared.context, admin: this.#rights.admin };
    this.#decoder = new RequestDecoder(
      { ...shared.decoderLimits, ...(this.#rights.authenticated ? {} : UNAUTHENTICATED_LIMITS) },
      KNOWN_NAMES,
    );
    socket.setNoDelay(true);
    // A client's end of input is not the end of its replies: the socket stays open for writing
    // until they are sent (see #finishAfterPeer). Set here, not on the server, so that a TLS
    // socket whose handshake fails still closes when its peer goes.
    socket.allowHalfOpen = true;
    socket.on('data', (chunk: Buffer) => {
      this.#decoder.push(chunk);
      if (!this.#busy) this.#drain(this.#startMark());
    });
    socket.on('drain', () => {
      if (!this.#closing) socket.resume();
    });
    socket.on('end', () => {
      this.#peerEnded = true;
      if (!this.#busy) this.#finishAfterPeer();
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.#forget());
  }

  /** Stops reading, lets the command in flight finish, sends what is pending, then closes. */
  async shutdown(): Promise<void> {
    this.#closing = true;
    this.#socket.pause();
    if (this.#busy) await new Promise<void>((resolve) => (this.#onIdle = resolve));
    this.#flush();
    this.#socket.end();
  }

  deliver(channel: string, message: string, pattern: string | null): void {
    this.#writer.write(
      pushReply(
        pattern === null ? ['message', channel, message] : ['pmessage', pattern, channel, message],
      ),
    );
    if (this.#busy || this.#flushScheduled) return;
    // Coalesce the events of one tick into one write.
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /** Where a command's time starts: now, or nothing when no metrics are kept. */
  #startMark(): number {
    return this.#shared.metrics ? performance.now() : 0;
  }

  /**
   * Runs the buffered requests in order, synchronously until one's reply is still pending: the
   * memory store answers at once, so a whole pipeline costs no promise. A pending reply hands
   * the rest to {@link #resume}, so the order of replies never changes.
   *
   * Commands are timed from `mark`, the end of the group before, so each counts its own
   * decoding too (see {@link #timeGroup}).
   */
  #drain(mark: number): void {
    this.#busy = true;
    let pending = false;
    try {
      while (!this.#closing && !this.#socket.destroyed) {
        const request = this.#decoder.next();
        if (request === undefined) break;
        if (request instanceof ProtocolError) {
          this.#timeGroup(mark);
          this.#shared.stats.protocolErrors++;
          this.#writer.error(request);
          this.#closing = true;
          this.#flush();
          this.#socket.end();
          return;
        }
        let failure: unknown;
        try {
          const reply = this.#dispatch(request);
          if (reply instanceof Promise) {
            pending = true;
            // The group before ends here: a pending command is timed on its own.
            void this.#resume(reply, request, this.#timeGroup(mark));
            return;
          }
          if (reply !== undefined) this.#writer.write(reply);
        } catch (error) {
          failure = error;
          this.#replyError(error);
        }
        mark = this.#finished(request, mark, failure);
      }
    } finally {
      if (!pending) {
        this.#timeGroup(mark);
        this.#idle();
      }
    }
  }

  /** Writes the reply of a command that was pending, then goes on with the requests after it. */
  async #resume(reply: Promise<Reply | undefined>, request: string[], mark: number): Promise<void> {
    let failure: unknown;
    try {
      const value = await reply;
      if (value !== undefined) this.#writer.write(value);
    } catch (error) {
      failure = error;
      this.#replyError(error);
    }
    this.#untime(request, failure);
    this.#drain(this.#timeGroup(mark));
  }

  /** Answers a failed command: its code word, or ERR internal error for what is not ours. */
  #replyError(error: unknown): void {
    if (!(error instanceof SessiondError)) this.#shared.onError(error);
    this.#writer.error(
      error instanceof SessiondError ? error : new SessiondError('ERR', 'internal error'),
    );
  }

  /** Notes the command that just ended for timing, flushes a large batch; the next mark. */
  #finished(request: string[], mark: number, failure: unknown): number {
    this.#untime(request, failure);
    if (this.#untimed.length >= TIMING_GROUP) mark = this.#timeGroup(mark);
    if (this.#writer.byteLength >= FLUSH_AT) {
      mark = this.#timeGroup(mark);
      this.#flush();
      if (this.#shared.metrics) mark = performance.now();
    }
    return mark;
  }

  /** Adds a command that ended to the group {@link #timeGroup} times; none without metrics. */
  #untime(request: string[], failure: unknown): void {
    if (!this.#shared.metrics) return;
    this.#untimed.push(request);
    this.#untimedFailures.push(failure);
  }

  /**
   * Times the commands run since `mark` with one clock read (about 45 ns each on the guests we
   * measure on, a tenth of a pipelined GET), and returns the new mark. One command gets its own
   * time. A group of several shares its time evenly: the sum is exact, and so is every
   * command's bucket when the group took at most the first bucket's bound (25 µs), as a
   * pipeline of fast commands does; a slower group smears its time over its commands.
   */
  #timeGroup(mark: number): number {
    const metrics = this.#shared.metrics;
    const count = this.#untimed.length;
    if (!metrics || count === 0) return mark;
    const now = performance.now();
    const each = (now - mark) / 1000 / count;
    for (let i = 0; i < count; i++)
      metrics.command(this.#untimed[i]!, each, this.#untimedFailures[i]);
    this.#untimed.length = 0;
    this.#untimedFailures.length = 0;
    return now;
  }

  /**
   * The batch is done: its replies go out in one write, at once. Waiting until every ready socket
   * was read (as Redis does) raised pipelined throughput by a third under redis-benchmark but
   * doubled the soak's p99 (BENCHMARKS.md), so only pub/sub messages wait for the loop's turn.
   */
  #idle(): void {
    this.#busy = false;
    if (this.#peerEnded) this.#finishAfterPeer();
    else this.#flush();
    const onIdle = this.#onIdle;
    this.#onIdle = undefined;
    onIdle?.();
  }

  /**
   * After the client's last byte, and its last command: sends every reply, then closes. A
   * client that sends its commands and half-closes (`nc`, `redis-cli < file`) gets them all, even
   * those of commands still pending when its input ended.
   */
  #finishAfterPeer(): void {
    this.#flush();
    this.#socket.end();
  }

  /** Runs one request; connection commands here, the rest through the shared command table. */
  #dispatch(request: string[]): Reply | Promise<Reply> | undefined {
    const raw = request[0]!;
    let entry = DISPATCH.get(raw);
    // A name spelled otherwise than the shared constant (inline, or not a known name) is looked
    // up once more by its upper-case form.
    const name = entry === undefined ? commandName(raw) : raw;
    if (entry === undefined) entry = DISPATCH.get(name);
    const args = request.slice(1);
    this.#shared.stats.commands++;
    if (!this.#rights.authenticated && name !== 'AUTH' && name !== 'HELLO' && name !== 'QUIT') {
      throw new SessiondError('NOAUTH', 'Authentication required.');
    }
    const subscribed = this.#channels.size + this.#patterns.size > 0;
    if (subscribed && this.#writer.version === 2 && !SUBSCRIBED_ALLOWED.has(name)) {
      throw syntaxError(
        `Can't execute '${name.toLowerCase()}': only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
      );
    }
    if (entry) return runSpec(this.#context, entry, args);
    return this.#connectionCommand(name, args, subscribed);
  }

  /** Commands that act on the connection itself; the rest go to the shared command table. */
  #connectionCommand(
    name: string,
    args: string[],
    subscribed: boolean,
  ): Reply | Promise<Reply> | undefined {
    switch (name) {
      case 'AUTH':
        if (args.length < 1 || args.length > 2)
          throw syntaxError("wrong number of arguments for 'auth' command");
        this.#authenticate(args.length === 2 ? args[0] : undefined, args.at(-1)!);
        return simpleString('OK');
      case 'HELLO':
        return this.#hello(args);
      case 'QUIT':
        this.#writer.simple('OK');
        this.#closing = true;
        this.#flush();
        this.#socket.end();
        return undefined;
      case 'RESET':
        for (const channel of this.#channels) this.#shared.pubsub.unsubscribe(this, channel);
        for (const pattern of this.#patterns) this.#shared.pubsub.punsubscribe(this, pattern);
        this.#channels.clear();
        this.#patterns.clear();
        this.#writer.version = 2;
        return simpleString('RESET');
      case 'SUBSCRIBE':
      case 'PSUBSCRIBE':
        if (args.length === 0)
          throw syntaxError(`wrong number of arguments for '${name.toLowerCase()}' command`);
        this.#subscribe(name === 'PSUBSCRIBE', args);
        return undefined;
      case 'UNSUBSCRIBE':
      case 'PUNSUBSCRIBE':
        this.#unsubscribe(name === 'PUNSUBSCRIBE', args);
        return undefined;
      case 'PING':
        if (subscribed && this.#writer.version === 2) return ['pong', args[0] ?? ''];
        break;
    }
    return runCommand(this.#context, name, args);
  }

  #authenticate(user: string | undefined, password: string): void {
    if (!this.#shared.auth.required)
      throw syntaxError('AUTH called without any password configured');
    const rights = this.#shared.auth.check(user, password);
    if (!rights) {
      this.#shared.stats.authFailures++;
      // Who guessed, never what: traces password guessing without leaking a password to the logs.
      this.#shared.logger?.warn(
        { protocol: 'resp', peer: this.#socket.remoteAddress },
        'password refused',
      );
      throw new SessiondError('WRONGPASS', 'invalid username-password pair or user is disabled.');
    }
    this.#rights = rights;
    this.#context = { ...this.#shared.context, admin: rights.admin };
    // After AUTH, the configured limits replace the tight unauthenticated ones.
    this.#decoder.setLimits({ ...DEFAULT_DECODER_LIMITS, ...this.#shared.decoderLimits });
  }

  #hello(args: string[]): Reply {
    let i = 0;
    const version = args[0] === undefined ? this.#writer.version : Number(args[i++]);
    if (version !== 2 && version !== 3) throw syntaxError('NOPROTO unsupported protocol version');
    while (i < args.length) {
      const option = args[i]!.toUpperCase();
      if (option === 'AUTH' && args[i + 2] !== undefined) {
        this.#authenticate(args[i + 1], args[i + 2]!);
        i += 3;
      } else if (option === 'SETNAME' && args[i + 1] !== undefined) {
        i += 2;
      } else {
        throw syntaxError(`syntax error in HELLO option '${args[i]!}'`);
      }
    }
    if (!this.#rights.authenticated)
      throw new SessiondError(
        'NOAUTH',
        'HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
      );
    this.#writer.version = version;
    return mapReply([
      ['server', 'sessiond'],
      ['version', this.#shared.version],
      ['proto', version],
      ['id', this.id],
      ['mode', 'standalone'],
      ['role', 'master'],
      ['modules', []],
    ]);
  }

  #subscribe(patterns: boolean, names: string[]): void {
    const mine = patterns ? this.#patterns : this.#channels;
    for (const name of names) {
      if (!mine.has(name)) {
        mine.add(name);
        if (patterns) this.#shared.pubsub.psubscribe(this, name);
        else this.#shared.pubsub.subscribe(this, name);
      }
      this.#writer.write(
        pushReply([
          patterns ? 'psubscribe' : 'subscribe',
          name,
          this.#channels.size + this.#patterns.size,
        ]),
      );
    }
  }

  #unsubscribe(patterns: boolean, names: string[]): void {
    const mine = patterns ? this.#patterns : this.#channels;
    const kind = patterns ? 'punsubscribe' : 'unsubscribe';
    const targets = names.length > 0 ? names : [...mine];
    if (targets.length === 0)
      this.#writer.write(pushReply([kind, null, this.#channels.size + this.#patterns.size]));
    for (const name of targets) {
      mine.delete(name);
      if (patterns) this.#shared.pubsub.punsubscribe(this, name);
      else this.#shared.pubsub.unsubscribe(this, name);
      this.#writer.write(pushReply([kind, name, this.#channels.size + this.#patterns.size]));
    }
  }

  #flush(): void {
    if (this.#writer.byteLength === 0 || this.#socket.destroyed) return;
    this.#shared.stats.socketWrites++;
    const batch = this.#writer.take();
    const congested = !(typeof batch === 'string'
      ? this.#socket.write(batch, 'latin1')
      : this.#socket.write(batch));
    if (this.#socket.writableLength > this.#shared.maxOutputBuffer) {
      // A client that does not read its replies is cut off rather than allowed to grow memory.
      this.#shared.stats.outputBufferDisconnects++;
      this.#socket.destroy();
    } else if (congested) {
      this.#socket.pause();
    }
  }

  #forget(): void {
    this.#closing = true;
    for (const channel of this.#channels) this.#shared.pubsub.unsubscribe(this, channel);
    for (const pattern of this.#patterns) this.#shared.pubsub.punsubscribe(this, pattern);
  }
}
