import type { ConnectionOptions } from 'node:tls';
import {
  ClientClosedError,
  createClient,
  DisconnectsClientError,
  ErrorReply,
  ReconnectStrategyError,
  RESP_TYPES,
  type RedisFunctions,
  type RedisModules,
  type RedisScripts,
  type RespVersions,
  type TypeMapping,
} from '@redis/client';
import type { CtlQuery } from '../core/engine.ts';
import { SessiondError } from '../errors.ts';
import { ClientError, fromErrorReply } from './client-error.ts';

/** Where and how to connect (msession_connect's host and port, and what msession lacked). */
export interface ConnectOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8086, msession's port. */
  port?: number;
  /** The server's password; without one, a server that requires AUTH answers NOAUTH. */
  password?: string;
  /** `default` (every command but the admin ones) or `admin`; default `default`. */
  username?: string;
  /**
   * Speak TLS: `true` verifies the server's certificate against the system's CAs; an object
   * adds to or replaces Node's TLS options (e.g. `{ ca }` for a private CA).
   */
  tls?: ConnectionOptions | boolean;
  /** Milliseconds to wait for a reply before failing with TIMEOUT; default 5000, 0 waits forever. */
  commandTimeoutMs?: number;
  /**
   * After a lost connection, reconnect with exponential backoff and jitter up to `maxDelayMs`
   * (default 2000) between attempts, for as long as it takes; `false` gives up at once.
   */
  reconnect?: { maxDelayMs?: number } | false;
  /** Speak RESP3 (HELLO 3) instead of RESP2; the API is the same either way. Default false. */
  resp3?: boolean;
  /**
   * Told of connection losses, failed reconnect attempts and listeners that threw. Calls in
   * flight fail on their own, so this is for logging.
   */
  onError?: (error: Error) => void;
}

/** What CREATE, UNIQ take besides the id. */
export interface CreateOptions {
  /** The session's class (LIST, COUNT and scan can filter by it). */
  cls?: string;
  /** The initial data blob. */
  data?: string;
  /** Idle timeout in seconds; 0 never idle-expires. */
  timeout?: number;
}

/** One page of session ids; pass `cursor` back for the next, until it is "0". */
export interface ListPage {
  cursor: string;
  ids: string[];
}

/** Variables to set at once: a record, a Map, or name/value pairs. */
export type Variables =
  | Readonly<Record<string, string>>
  | ReadonlyMap<string, string>
  | Iterable<readonly [string, string]>;

/** Receives one published event: the message (a session id, or a count) and its channel. */
export type EventListener = (message: string, channel: string) => void;

type Transport = ReturnType<
  typeof createClient<RedisModules, RedisFunctions, RedisScripts, RespVersions, TypeMapping>
>;

/** node-redis's listener type, which its package index does not export. */
type PubSubListener = Parameters<Transport['subscribe']>[1];

/** What one transport knows of its own life, for its reconnect strategy. */
interface LinkState {
  /** It has been ready once: losses after this are reconnected, failures before it are not. */
  ready: boolean;
  /** Why it gave up for good. */
  fatal: Error | undefined;
}

/** Maps arrive as Map under RESP3: a variable named `__proto__` must not become an object key. */
const REPLY_TYPES: TypeMapping = { [RESP_TYPES.MAP]: Map };
/** INC's 64-bit result as text, so no digit is lost to a double. */
const INTEGER_AS_TEXT: TypeMapping = { [RESP_TYPES.MAP]: Map, [RESP_TYPES.NUMBER]: String };
const DEFAULT_MAX_DELAY_MS = 2000;
const FIRST_DELAY_MS = 50;

/**
 * The typed client of a sessiond server, its methods named after msession's PHP functions
 * (msession_get → `get`, msession_set_array → `setArray`). Built on node-redis: calls made in
 * the same tick are written to the socket together (pipelined), replies come back in order.
 *
 * Values are Unicode strings: the client sends them UTF-8 encoded and decodes what it receives
 * as UTF-8, so "héllo ✓" round-trips; the server's size limits count those UTF-8 bytes. Bytes
 * that another client stored and that are not valid UTF-8 read back with U+FFFD in their place.
 *
 * Server errors reject with SessiondError carrying the server's code word (PROTOCOL.md). Every
 * method can also reject with NOAUTH (no password given to a server that needs one) and with
 * ClientError: TIMEOUT (no reply in time; the command may still have run), CONNECTION (not
 * connected, or the connection was lost before the reply) or CLOSED (after `disconnect()`).
 *
 * @example
 * const client = await SessiondClient.connect({ port: 8086, password });
 * const sid = await client.uniq(32);
 * await client.set(sid, 'cart', '3 items');
 * await client.get(sid, 'cart'); // '3 items'
 * await client.disconnect();
 */
export class SessiondClient {
  #options: ConnectOptions;
  #where: string;
  #timeoutMs: number;
  #redis: Transport;
  #state: LinkState = { ready: false, fatal: undefined };
  #subscriber: Promise<Transport> | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: ConnectOptions) {
    const timeoutMs = options.commandTimeoutMs ?? 5000;
    if (!(timeoutMs >= 0 && Number.isFinite(timeoutMs))) {
      throw new RangeError('commandTimeoutMs must be a non-negative number');
    }
    const maxDelay = options.reconnect === false ? 0 : options.reconnect?.maxDelayMs;
    if (maxDelay !== undefined && !(maxDelay >= 0 && Number.isFinite(maxDelay))) {
      throw new RangeError('reconnect.maxDelayMs must be a non-negative number');
    }
    this.#options = options;
    this.#timeoutMs = timeoutMs;
    this.#where = `${options.host ?? '127.0.0.1'}:${options.port ?? 8086}`;
    this.#redis = this.#transport(this.#state);
  }

  /**
   * Connects and checks that the server answers (msession_connect).
   * @throws ClientError CONNECTION when the server cannot be reached; SessiondError WRONGPASS
   * for a wrong password, NOAUTH when the server needs one and none was given
   * @example
   * const client = await SessiondClient.connect({ host: 'sessions.internal', password, tls: true });
   */
  static async connect(options: ConnectOptions = {}): Promise<SessiondClient> {
    const client = new SessiondClient(options);
    // Under RESP2 without a password nothing is sent on connect; one PING makes a server that
    // requires AUTH fail here, not on the first real call.
    await client.#open(client.#redis, () => client.ping());
    return client;
  }

  /**
   * Closes the connections (msession_disconnect): replies to calls in flight are awaited while
   * connected; calls still waiting for a reconnect fail with CLOSED. Calling it again returns
   * the same promise.
   */
  disconnect(): Promise<void> {
    this.#closing ??= (async () => {
      const subscriber = await this.#subscriber?.catch(() => undefined);
      await Promise.all([closeTransport(this.#redis), subscriber && closeTransport(subscriber)]);
    })();
    return this.#closing;
  }

  // ---- msession verbs ----

  /**
   * Creates a session with the given id (msession_create).
   * @returns false when a live session already has that id
   * @throws BADID, LIMIT, DENIED, NOTINT (a non-integer timeout)
   */
  async create(sid: string, options: CreateOptions = {}): Promise<boolean> {
    return flag(await this.#send(['CREATE', sid, ...createArgs(options)]));
  }

  /**
   * Creates a session under a new unguessable id of `length` (22..255) alphanumerics, made by
   * the server (msession_uniq).
   * @returns the new id
   * @throws ERR for a length out of range; LIMIT, DENIED
   */
  async uniq(length: number, options: CreateOptions = {}): Promise<string> {
    return text(await this.#send(['UNIQ', String(length), ...createArgs(options)]));
  }

  /**
   * A random alphanumeric string of 1..4096 characters; creates nothing (msession_randstr).
   * @throws ERR for a length out of range
   */
  async randstr(length: number): Promise<string> {
    return text(await this.#send(['RANDSTR', String(length)]));
  }

  /**
   * Destroys a session (msession_destroy).
   * @returns false when there was no such session
   * @throws BADID, DENIED
   */
  async destroy(sid: string): Promise<boolean> {
    return flag(await this.#send(['DESTROY', sid]));
  }

  /**
   * Sets one variable (msession_set).
   * @throws NOSESSION, BADID, LIMIT, DENIED
   */
  async set(sid: string, name: string, value: string): Promise<void> {
    await this.#send(['SET', sid, name, value]);
  }

  /**
   * Sets several variables in one command (msession_set_array). Nothing to set sends nothing.
   * @throws NOSESSION, BADID, LIMIT, DENIED
   * @example
   * await client.setArray(sid, { user: 'ada', theme: 'dark' });
   */
  async setArray(sid: string, vars: Variables): Promise<void> {
    const args = ['SET', sid];
    for (const [name, value] of entries(vars)) args.push(name, value);
    if (args.length > 2) await this.#send(args);
  }

  /**
   * One variable (msession_get): its value, else `dflt` when given, else null.
   * @throws NOSESSION, BADID
   */
  async get(sid: string, name: string, dflt?: string): Promise<string | null> {
    const args = ['GET', sid, name];
    if (dflt !== undefined) args.push(dflt);
    return textOrNull(await this.#send(args));
  }

  /**
   * All variables of a session (msession_get_array).
   * @throws NOSESSION, BADID
   */
  async getArray(sid: string): Promise<Map<string, string>> {
    return textMap(await this.#send(['GETALL', sid]));
  }

  /**
   * Removes variables (PHPLib's unregister). Naming none sends nothing.
   * @returns how many existed
   * @throws NOSESSION, BADID, DENIED
   */
  async unset(sid: string, ...names: string[]): Promise<number> {
    if (names.length === 0) return 0;
    return integer(await this.#send(['UNSET', sid, ...names]));
  }

  /**
   * Adds `by` (default 1) to an integer variable in one atomic step; a missing one counts as 0
   * (msession_inc). The result is a bigint because variables hold signed 64-bit integers, past
   * the 2^53 a number holds exactly (msession returned a string for the same reason).
   * @returns the new value
   * @throws NOTINT (not an integer, or the sum leaves 64 bits), NOSESSION, BADID, LIMIT, DENIED
   */
  async inc(sid: string, name: string, by: bigint | number = 1n): Promise<bigint> {
    const reply = text(await this.#send(['INC', sid, name, String(by)], INTEGER_AS_TEXT));
    return BigInt(reply);
  }

  /**
   * Sets the data blob, creating the session when absent (msession_set_data).
   * @throws BADID, LIMIT, DENIED
   */
  async setData(sid: string, data: string): Promise<void> {
    await this.#send(['SETDATA', sid, data]);
  }

  /**
   * The data blob, "" if never set (msession_get_data).
   * @throws NOSESSION, BADID
   */
  async getData(sid: string): Promise<string> {
    return text(await this.#send(['GETDATA', sid]));
  }

  /** Ids of the sessions whose variable `name` equals `value` (msession_find). */
  async find(name: string, value: string): Promise<string[]> {
    return texts(await this.#send(['FIND', name, value]));
  }

  /** Session id → value, for every session that has variable `name` (msession_listvar). */
  async listvar(name: string): Promise<Map<string, string>> {
    return textMap(await this.#send(['LISTVAR', name]));
  }

  /**
   * Session ids (msession_list): all of them (of one class if given), or with `cursor` one page
   * of at most `count`. For large servers prefer `scan()`.
   * @throws ERR for an unknown cursor; LIMIT when count exceeds the server's maxListCount, or
   * when all ids would be more than its maxResultIds (use `scan()`)
   */
  list(options?: { cls?: string }): Promise<string[]>;
  list(options: { cursor: string; count?: number; cls?: string }): Promise<ListPage>;
  async list(
    options: { cursor?: string; count?: number; cls?: string } = {},
  ): Promise<string[] | ListPage> {
    const args = ['LIST'];
    if (options.cursor !== undefined) args.push('CURSOR', options.cursor);
    if (options.count !== undefined) args.push('COUNT', String(options.count));
    if (options.cls !== undefined) args.push('CLASS', options.cls);
    const reply = await this.#send(args);
    if (options.cursor === undefined) return texts(reply);
    if (!Array.isArray(reply) || reply.length !== 2) throw badReply('LIST');
    return { cursor: text(reply[0]), ids: texts(reply[1]) };
  }

  /**
   * Every session id (of one class if given), fetched a page of `count` at a time with LIST
   * CURSOR, so the server never builds one huge reply.
   * @throws LIMIT when count exceeds the server's maxListCount
   * @example
   * for await (const sid of client.scan({ cls: 'shop' })) console.log(sid);
   */
  async *scan(options: { count?: number; cls?: string } = {}): AsyncGenerator<string, void> {
    let cursor = '0';
    do {
      const page = await this.list({ ...options, cursor });
      yield* page.ids;
      cursor = page.cursor;
    } while (cursor !== '0');
  }

  /** Live sessions, of one class if given (msession_count). */
  async count(cls?: string): Promise<number> {
    return integer(await this.#send(cls === undefined ? ['COUNT'] : ['COUNT', 'CLASS', cls]));
  }

  /**
   * The idle timeout in seconds (msession_timeout); with `seconds`, sets it first (0 never
   * idle-expires, negative restores the server's default).
   * @throws NOSESSION, BADID, LIMIT, DENIED, NOTINT
   */
  async timeout(sid: string, seconds?: number): Promise<number> {
    const args = ['TIMEOUT', sid];
    if (seconds !== undefined) args.push(String(seconds));
    return integer(await this.#send(args));
  }

  /**
   * Takes the session's exclusive lock for `leaseMs` (server default 30000), waiting up to
   * `waitMs` (default 0) for the holder (msession_lock). The command timeout is extended by
   * `waitMs`: the wait was asked for and is not a sign of a dead server.
   * @returns the key to unlock with, a fencing token that increases per session
   * @throws LOCKED when still held after the wait; NOSESSION, BADID, LIMIT (lease or wait over
   * the server's maximum), ERR
   */
  async lock(sid: string, options: { leaseMs?: number; waitMs?: number } = {}): Promise<number> {
    const args = ['LOCK', sid];
    if (options.leaseMs !== undefined) args.push('LEASE', String(options.leaseMs));
    if (options.waitMs !== undefined) args.push('WAIT', String(options.waitMs));
    return integer(await this.#send(args, REPLY_TYPES, Math.max(0, options.waitMs ?? 0)));
  }

  /**
   * Releases the lock held with `key` (msession_unlock).
   * @returns false when it was not held with that key (expired, or another holder's)
   * @throws BADID, NOTINT
   */
  async unlock(sid: string, key: number): Promise<boolean> {
    return flag(await this.#send(['UNLOCK', sid, String(key)]));
  }

  /**
   * Calls the server's loaded escape function (msession_plugin).
   * @throws NOPLUGIN when none is loaded; ERR when it fails
   */
  async plugin(sid: string, val: string, param?: string): Promise<string> {
    const args = ['PLUGIN', sid, val];
    if (param !== undefined) args.push(param);
    return text(await this.#send(args));
  }

  /**
   * Calls a plugin function registered on the server (msession_call).
   * @throws NOPLUGIN when no function has that name; ERR when it fails
   */
  async call(fn: string, ...args: string[]): Promise<string> {
    return text(await this.#send(['CALL', fn, ...args]));
  }

  /**
   * msession_ctl: EXIST (1/0), TTL (seconds left, -1 never), AGE, TLA (seconds since last
   * access), CTIME (creation, unix seconds), TOUCH (1/0), NOW (server time, unix seconds).
   * @throws NOSESSION for TTL, AGE, TLA and CTIME of a missing session; BADID
   */
  async ctl(sid: string, which: CtlQuery): Promise<number> {
    return integer(await this.#send(['CTL', sid, which]));
  }

  // ---- beyond msession ----

  /**
   * Records an access now, extending idle expiry.
   * @returns false when there is no such session
   * @throws BADID
   */
  async touch(sid: string): Promise<boolean> {
    return flag(await this.#send(['TOUCH', sid]));
  }

  /**
   * Sets absolute expiry `seconds` from now, whatever the activity.
   * @returns false when there is no such session
   * @throws BADID, LIMIT, DENIED, NOTINT
   */
  async expire(sid: string, seconds: number): Promise<boolean> {
    return flag(await this.#send(['EXPIRE', sid, String(seconds)]));
  }

  /**
   * Removes absolute expiry.
   * @returns false when there is no such session
   * @throws BADID, DENIED
   */
  async persist(sid: string): Promise<boolean> {
    return flag(await this.#send(['PERSIST', sid]));
  }

  /**
   * Moves the session to a new unguessable id: call it at login and privilege change (defends
   * against session fixation). With `graceSeconds` the old id stays a read-only copy that long.
   * @returns the new id
   * @throws NOSESSION, BADID, LIMIT, DENIED
   */
  async regenerate(sid: string, options: { graceSeconds?: number } = {}): Promise<string> {
    const args = ['REGENERATE', sid];
    if (options.graceSeconds !== undefined) args.push('GRACE', String(options.graceSeconds));
    return text(await this.#send(args));
  }

  /**
   * Sets the session's user (eZSessionSetUserID); null or "" clears it.
   * @throws NOSESSION, BADID, LIMIT, DENIED
   */
  async setUser(sid: string, user: string | null): Promise<void> {
    await this.#send(['SETUSER', sid, user ?? '']);
  }

  /**
   * The session's user, or null (eZSessionUserID).
   * @throws NOSESSION, BADID
   */
  async getUser(sid: string): Promise<string | null> {
    return textOrNull(await this.#send(['GETUSER', sid]));
  }

  /** Ids of the user's live sessions. */
  async userSessions(user: string): Promise<string[]> {
    return texts(await this.#send(['USERSESSIONS', user]));
  }

  /**
   * Destroys the user's sessions but `except` ("log out my other devices").
   * @returns how many were destroyed
   */
  async destroyUser(user: string, options: { except?: string } = {}): Promise<number> {
    const args = ['DESTROYUSER', user];
    if (options.except !== undefined) args.push('EXCEPT', options.except);
    return integer(await this.#send(args));
  }

  /**
   * Removes expired sessions now.
   * @returns how many
   * @throws DENIED
   */
  async gc(): Promise<number> {
    return integer(await this.#send(['GC']));
  }

  /**
   * Removes every session (eZSessionEmpty); needs the admin right.
   * @returns how many were live
   * @throws DENIED without the admin right
   */
  async empty(): Promise<number> {
    return integer(await this.#send(['EMPTY']));
  }

  /** "PONG", or `message` echoed. */
  async ping(message?: string): Promise<string> {
    return text(await this.#send(message === undefined ? ['PING'] : ['PING', message]));
  }

  /** INFO's text: `# Section` headers and `key:value` lines (version, uptime, store, ...). */
  async info(): Promise<string> {
    return text(await this.#send(['INFO']));
  }

  /**
   * Calls `listener` for every event published on `channels`: `events:created`, `events:updated`,
   * `events:destroyed`, `events:expired`, `events:regenerated`, `events:gc`, `events:empty`; a
   * name with a glob character (`events:*`) subscribes as a pattern. The message is the session
   * id (for gc and empty, the count). Uses a second connection, opened on first use, as Redis
   * clients do; it reconnects and resubscribes by itself.
   * @returns a function that stops this listener
   * @throws ClientError CONNECTION when the subscriber connection cannot be opened
   * @example
   * const stop = await client.subscribe('events:destroyed', (sid) => cache.delete(sid));
   */
  async subscribe(
    channels: string | readonly string[],
    listener: EventListener,
  ): Promise<() => Promise<void>> {
    const names = typeof channels === 'string' ? [channels] : [...channels];
    const patterns = names.filter(isPattern);
    const plain = names.filter((name) => !isPattern(name));
    const subscriber = await this.#subscriberTransport();
    const deliver: PubSubListener = (message, channel) => {
      // A listener's throw would unwind into the reply decoder and desynchronise it.
      try {
        listener(String(message), String(channel));
      } catch (error) {
        this.#options.onError?.(error instanceof Error ? error : new Error(String(error)));
      }
    };
    try {
      if (plain.length > 0) await subscriber.subscribe(plain, deliver);
      if (patterns.length > 0) await subscriber.pSubscribe(patterns, deliver);
    } catch (error) {
      throw this.#translate(error, 'SUBSCRIBE');
    }
    let stopped: Promise<void> | undefined;
    return () =>
      (stopped ??= (async () => {
        if (!subscriber.isOpen) return;
        try {
          if (plain.length > 0) await subscriber.unsubscribe(plain, deliver);
          if (patterns.length > 0) await subscriber.pUnsubscribe(patterns, deliver);
        } catch (error) {
          throw this.#translate(error, 'UNSUBSCRIBE');
        }
      })());
  }

  // ---- the wire ----

  /**
   * Sends one command; replies to the calls of one tick travel together. The timer covers the
   * whole round trip (node-redis's own timeout stops once a command is written).
   */
  #send(args: string[], types: TypeMapping = REPLY_TYPES, extraMs = 0): Promise<unknown> {
    const name = args[0]!;
    if (this.#timeoutMs === 0) {
      return this.#redis.sendCommand(args, { typeMapping: types }).catch((error: unknown) => {
        throw this.#translate(error, name);
      });
    }
    const ms = this.#timeoutMs + extraMs;
    // Aborting takes a command that was never written out of the queue, so a call that failed
    // while disconnected is not run later, after the caller has moved on.
    const abort = new AbortController();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        abort.abort();
        reject(this.#timeoutError(name, ms));
      }, ms);
      this.#redis.sendCommand(args, { typeMapping: types, abortSignal: abort.signal }).then(
        (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(this.#translate(error, name));
        },
      );
    });
  }

  #timeoutError(name: string, ms: number): ClientError {
    if (!this.#redis.isReady) {
      return new ClientError(
        'CONNECTION',
        `${name} not sent: no connection to ${this.#where} for ${ms} ms (reconnecting)`,
      );
    }
    return new ClientError(
      'TIMEOUT',
      `${name} got no reply from ${this.#where} within ${ms} ms; it may still run on the server`,
    );
  }

  /**
   * The error a caller sees for what node-redis raised. Messages name the command but never its
   * arguments: defends against session ids and values leaking into logs.
   */
  #translate(error: unknown, name: string): Error {
    if (error instanceof SessiondError || error instanceof ClientError) return error;
    if (error instanceof ErrorReply) return fromErrorReply(error.message);
    if (error instanceof ReconnectStrategyError) return this.#translate(error.originalError, name);
    if (error instanceof ClientClosedError || error instanceof DisconnectsClientError) {
      const closed = new ClientError('CLOSED', `${name}: the client is disconnected`);
      return this.#closing ? closed : (this.#state.fatal ?? closed);
    }
    const reason = error instanceof Error ? error.message : String(error);
    return new ClientError(
      'CONNECTION',
      `${name}: connection to ${this.#where} lost before the reply (${reason}); it may or may not have run`,
      { cause: error },
    );
  }

  #transport(state: LinkState): Transport {
    const options = this.#options;
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 8086;
    const tls = options.tls === true ? {} : options.tls || undefined;
    const maxDelay =
      options.reconnect === false ? 0 : (options.reconnect?.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
    const reconnectStrategy = (retries: number, cause: Error): number | Error => {
      const gaveUp = this.#giveUp(state, cause);
      if (gaveUp) {
        state.fatal = gaveUp;
        return gaveUp;
      }
      // Equal jitter spreads the reconnects of many clients after a server restart.
      const ceiling = Math.min(maxDelay, FIRST_DELAY_MS * 2 ** Math.min(retries, 16));
      return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    };
    const socket = {
      host,
      port,
      reconnectStrategy,
      ...(this.#timeoutMs > 0 && { connectTimeout: this.#timeoutMs }),
    };
    const transport: Transport = createClient({
      // Node verifies the certificate unless the caller's own TLS options say otherwise.
      socket: tls ? { ...tls, ...socket, tls: true } : socket,
      ...(options.username !== undefined && { username: options.username }),
      ...(options.password !== undefined && { password: options.password }),
      RESP: options.resp3 ? 3 : 2,
      // sessiond has no CLIENT command and is not Redis Enterprise: skip both handshakes.
      disableClientInfo: true,
      maintNotifications: 'disabled',
      // 0 turns off node-redis's queue-only timeout; #send times the whole round trip.
      commandOptions: { typeMapping: REPLY_TYPES, timeout: 0 },
    });
    transport.on('ready', () => (state.ready = true));
    transport.on('error', (error: unknown) => options.onError?.(this.#connectionEvent(error)));
    return transport;
  }

  /** What `onError` is told of a connection's trouble. */
  #connectionEvent(error: unknown): Error {
    if (error instanceof ReconnectStrategyError) return this.#connectionEvent(error.originalError);
    if (error instanceof SessiondError || error instanceof ClientError) return error;
    if (error instanceof ErrorReply) return fromErrorReply(error.message);
    const reason = error instanceof Error ? error.message : String(error);
    return new ClientError('CONNECTION', `connection to ${this.#where}: ${reason}`, {
      cause: error,
    });
  }

  /** Why reconnecting is pointless, or undefined to keep trying. */
  #giveUp(state: LinkState, cause: Error): Error | undefined {
    // A wrong or missing password will not cure itself; retrying would only hammer the server
    // with failing AUTHs.
    if (cause instanceof ErrorReply) return fromErrorReply(cause.message);
    if (!state.ready) {
      return new ClientError('CONNECTION', `cannot connect to ${this.#where}: ${cause.message}`, {
        cause,
      });
    }
    if (this.#options.reconnect === false) {
      return new ClientError(
        'CONNECTION',
        `connection to ${this.#where} lost (${cause.message}); reconnect is off`,
        { cause },
      );
    }
    return undefined;
  }

  #subscriberTransport(): Promise<Transport> {
    if (this.#closing) {
      return Promise.reject(new ClientError('CLOSED', 'the client is disconnected'));
    }
    this.#subscriber ??= (async () => {
      const subscriber = this.#transport({ ready: false, fatal: undefined });
      try {
        await this.#open(subscriber);
      } catch (error) {
        this.#subscriber = undefined;
        throw error;
      }
      return subscriber;
    })();
    return this.#subscriber;
  }

  /**
   * Connects a transport and runs `verify`, all within the command timeout: a server that
   * accepts but never answers (HELLO, AUTH or PING) fails the connect instead of hanging it.
   */
  async #open(transport: Transport, verify?: () => Promise<unknown>): Promise<void> {
    const ms = this.#timeoutMs;
    let timedOut = false;
    const timer =
      ms > 0
        ? setTimeout(() => {
            timedOut = true;
            transport.destroy();
          }, ms)
        : undefined;
    try {
      await transport.connect();
      await verify?.();
    } catch (error) {
      transport.destroy();
      if (!timedOut) throw this.#translate(error, 'connect');
      throw new ClientError(
        'CONNECTION',
        `no answer from ${this.#where} within ${ms} ms while connecting`,
      );
    } finally {
      clearTimeout(timer);
    }
  }
}

// ---- replies: checked, so a wrong shape is a clear error rather than a wrong value ----

function badReply(what: string): ClientError {
  return new ClientError('PROTOCOL', `unexpected reply shape for ${what}`);
}

function text(reply: unknown): string {
  if (typeof reply !== 'string') throw badReply('a string');
  return reply;
}

function textOrNull(reply: unknown): string | null {
  return reply === null ? null : text(reply);
}

function integer(reply: unknown): number {
  if (typeof reply !== 'number') throw badReply('an integer');
  return reply;
}

/** Booleans are integers on the wire (PROTOCOL.md). */
function flag(reply: unknown): boolean {
  return integer(reply) === 1;
}

function texts(reply: unknown): string[] {
  if (!Array.isArray(reply)) throw badReply('an array');
  return reply.map(text);
}

/** A map reply: a Map under RESP3, a flat name, value, ... array under RESP2. */
function textMap(reply: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (reply instanceof Map) {
    for (const [key, value] of reply) out.set(text(key), text(value));
    return out;
  }
  const flat = texts(reply);
  if (flat.length % 2 !== 0) throw badReply('a map');
  for (let i = 0; i < flat.length; i += 2) out.set(flat[i]!, flat[i + 1]!);
  return out;
}

function createArgs(options: CreateOptions): string[] {
  const args: string[] = [];
  if (options.cls !== undefined) args.push('CLASS', options.cls);
  if (options.data !== undefined) args.push('DATA', options.data);
  if (options.timeout !== undefined) args.push('TIMEOUT', String(options.timeout));
  return args;
}

function entries(vars: Variables): Iterable<readonly [string, string]> {
  if (vars instanceof Map || isIterable(vars)) return vars as Iterable<readonly [string, string]>;
  return Object.entries(vars);
}

function isIterable(value: object): value is Iterable<unknown> {
  return Symbol.iterator in value;
}

/** Redis glob characters: such a name subscribes as a pattern (PSUBSCRIBE). */
const isPattern = (name: string): boolean => /[*?[]/.test(name);

/** Graceful while connected (replies in flight arrive); at once while reconnecting. */
async function closeTransport(transport: Transport): Promise<void> {
  if (!transport.isOpen) return;
  if (transport.isReady) await transport.close();
  else transport.destroy();
}
