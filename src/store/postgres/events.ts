/**
 * Session events between the sessiond servers that share one PostgreSQL schema, through
 * LISTEN/NOTIFY.
 */
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import pg from 'pg';
import type { EventTransport, StoreEvent } from '../types.ts';

/** Options of {@link PostgresEvents}. */
export interface PostgresEventsOptions {
  /** Where the listening connection goes (it is dedicated: a pooled one cannot LISTEN). */
  connection: pg.ClientConfig;
  /** Sends one NOTIFY; the store passes its pool, so publishing never waits for the listener. */
  notify: (channel: string, payload: string) => Promise<unknown>;
  /** The channel, a plain identifier: one per schema, so deployments sharing a database stay apart. */
  channel: string;
  /**
   * The 32-byte AES-256-GCM key of the payloads, shared by the servers; the store keeps it in
   * its schema, where only roles that may read the sessions can read it.
   */
  key: Buffer;
  /** Where errors of the listening connection go; it reconnects by itself. */
  onError?: (error: unknown) => void;
}

/** What travels in a NOTIFY payload: the publishing instance, and the event. */
interface Envelope {
  o: string;
  e: StoreEvent;
}

/** AES-GCM's nonce and tag sizes, in bytes. */
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The first wait before the listener reconnects, and the longest. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

/** Whether `value` is a StoreEvent, so a stray NOTIFY on the channel cannot crash a listener. */
function isStoreEvent(value: unknown): value is StoreEvent {
  if (typeof value !== 'object' || value === null) return false;
  const event = value as Record<string, unknown>;
  switch (event['type']) {
    case 'created':
    case 'updated':
    case 'destroyed':
    case 'expired':
      return typeof event['id'] === 'string';
    case 'regenerated':
      return typeof event['id'] === 'string' && typeof event['oldId'] === 'string';
    case 'gc':
    case 'empty':
      return typeof event['count'] === 'number';
    default:
      return false;
  }
}

/**
 * An {@link EventTransport} over PostgreSQL LISTEN/NOTIFY: each server publishes what it did with
 * NOTIFY, and every server, itself included, hears each event once.
 *
 * A server hears its own events at once, synchronously inside publish(), and drops their echo
 * from the channel by the instance tag in the payload; the other servers hear them from the
 * channel in commit order. The listening connection reconnects by itself; events published while
 * it was down are not replayed (NOTIFY keeps no history).
 *
 * Payloads are sealed with AES-256-GCM: any role that can connect to the database may LISTEN on
 * any channel, and events carry session ids, which are bearer credentials. A payload that does
 * not open with the key (a forgery, or stray NOTIFY) is dropped.
 *
 * @example
 * const events = new PostgresEvents({ connection, channel: 'sessiond_events', notify, key });
 * const stop = await events.subscribe((event) => console.log(event));
 * await events.publish({ type: 'created', id: 's1' });
 */
export class PostgresEvents implements EventTransport {
  readonly #options: PostgresEventsOptions;
  /** Tags this instance's payloads, so it can tell its own echo from other servers' events. */
  readonly #origin = randomBytes(12).toString('base64url');
  readonly #listeners = new Set<(event: StoreEvent) => void>();
  #client: pg.Client | null = null;
  /** Settles when the current connection is listening. */
  #listening: Promise<void> | null = null;
  #reconnect: NodeJS.Timeout | undefined;
  #backoffMs = RECONNECT_MIN_MS;
  #closed = false;

  /** @throws RangeError when the key is not 32 bytes */
  constructor(options: PostgresEventsOptions) {
    if (options.key.length !== 32)
      throw new RangeError('postgres events: the key must be 32 bytes');
    this.#options = options;
  }

  /** Delivers `event` to this server's listeners now, and to the other servers' by NOTIFY. */
  async publish(event: StoreEvent): Promise<void> {
    if (this.#closed) throw new Error('postgres events: closed');
    this.#deliver(event);
    const payload = this.#seal(JSON.stringify({ o: this.#origin, e: event } satisfies Envelope));
    await this.#options.notify(this.#options.channel, payload);
  }

  /**
   * Calls `listener` for every event any server publishes; resolves once the channel is being
   * listened to, with a function that stops the listener (and the connection after the last).
   * If that first LISTEN fails it rejects, but the listener stays: it hears this server's own
   * events at once, and the others' once a reconnect succeeds (until close()).
   */
  async subscribe(listener: (event: StoreEvent) => void): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error('postgres events: closed');
    // Registered before LISTEN completes, so this server's own events reach it at once.
    const entry = (event: StoreEvent) => listener(event);
    this.#listeners.add(entry);
    try {
      await this.#listen();
    } catch (error) {
      this.#scheduleReconnect();
      throw error;
    }
    return async () => {
      if (!this.#listeners.delete(entry) || this.#listeners.size > 0) return;
      await this.#disconnect();
    };
  }

  /** Stops listening and drops every listener. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
    await this.#disconnect();
  }

  /** base64(nonce | tag | ciphertext): NOTIFY payloads are text, and at most 8000 bytes. */
  #seal(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#options.key, iv);
    const sealed = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
  }

  /** The envelope in a payload, or null when it was not sealed with our key. */
  #open(payload: string): Partial<Envelope> | null {
    try {
      const bytes = Buffer.from(payload, 'base64');
      const decipher = createDecipheriv(
        'aes-256-gcm',
        this.#options.key,
        bytes.subarray(0, IV_BYTES),
      );
      decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]);
      const envelope: unknown = JSON.parse(plain.toString('utf8'));
      return typeof envelope === 'object' && envelope !== null ? envelope : null;
    } catch {
      return null;
    }
  }

  #deliver(event: StoreEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#options.onError?.(error);
      }
    }
  }

  #listen(): Promise<void> {
    this.#listening ??= this.#connect().catch((error: unknown) => {
      this.#listening = null;
      throw error;
    });
    return this.#listening;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client(this.#options.connection);
    this.#client = client;
    const lost = (error?: unknown) => {
      if (this.#client !== client) return;
      this.#client = null;
      this.#listening = null;
      client.end().catch(() => {});
      if (error !== undefined) this.#options.onError?.(error);
      this.#scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', () => lost());
    client.on('notification', (message) => {
      if (message.channel !== this.#options.channel || message.payload === undefined) return;
      const envelope = this.#open(message.payload);
      if (envelope === null) return;
      // This server heard its own events when it published them.
      if (envelope.o === this.#origin || !isStoreEvent(envelope.e)) return;
      this.#deliver(envelope.e);
    });
    try {
      await client.connect();
      // LISTEN takes no parameters; the channel is a plain identifier checked by the store.
      await client.query(`LISTEN "${this.#options.channel}"`);
    } catch (error) {
      if (this.#client === client) this.#client = null;
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      throw error;
    }
    this.#backoffMs = RECONNECT_MIN_MS;
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#listeners.size === 0 || this.#reconnect !== undefined) return;
    const wait = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, RECONNECT_MAX_MS);
    this.#reconnect = setTimeout(() => {
      this.#reconnect = undefined;
      this.#listen().catch((error: unknown) => {
        this.#options.onError?.(error);
        this.#scheduleReconnect();
      });
    }, wait);
    this.#reconnect.unref();
  }

  async #disconnect(): Promise<void> {
    clearTimeout(this.#reconnect);
    this.#reconnect = undefined;
    const client = this.#client;
    const listening = this.#listening;
    this.#client = null;
    this.#listening = null;
    await listening?.catch(() => {});
    if (client === null) return;
    client.removeAllListeners('end');
    client.on('error', () => {});
    await client.end().catch(() => {});
  }
}
