/**
 * Session events fanned out to every sessiond server through Redis pub/sub (DESIGN.md: events
 * are produced once, by the server that did the operation, and every server's subscribers get
 * each one exactly once). Keyspace notifications are not used: they are node-local and lossy.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { EventTransport, StoreEvent } from '../types.ts';
import { openLink, type Link } from './link.ts';

/** Options of {@link RedisEvents.open}: where Redis is, as for RedisStore. */
export interface RedisEventsOptions {
  url?: string;
  cluster?: { rootNodes: readonly string[] };
  /** Names the Redis channel (`<prefix>events`); servers that share sessions share it. */
  prefix?: string;
  /** Told of connection trouble and of listeners that threw; default console.error. */
  onError?: (error: Error) => void;
}

/** Receives one event, published by any server. */
export type RedisEventListener = (event: StoreEvent) => void;

const TYPES = new Set(['created', 'updated', 'destroyed', 'expired', 'regenerated', 'gc', 'empty']);

/**
 * An event as JSON in latin1 bytes (ids are byte strings, and latin1 keeps each byte as is),
 * after the publishing instance's id and a space.
 */
function frame(from: string, event: StoreEvent): Buffer {
  return Buffer.from(`${from} ${JSON.stringify(event)}`, 'latin1');
}

/** The sender and event in a payload, or null for anything else on the channel (never trusted blindly). */
function unframe(payload: Buffer): [string, StoreEvent] | null {
  const raw = payload.toString('latin1');
  const space = raw.indexOf(' ');
  if (space <= 0) return null;
  let value: unknown;
  try {
    value = JSON.parse(raw.slice(space + 1));
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const event = value as Record<string, unknown>;
  if (typeof event.type !== 'string' || !TYPES.has(event.type)) return null;
  if ('count' in event ? typeof event.count !== 'number' : typeof event.id !== 'string')
    return null;
  return [raw.slice(0, space), event as StoreEvent];
}

/**
 * Publishes and receives session events over one Redis channel. Standalone Redis: PUBLISH and
 * SUBSCRIBE on a dedicated connection. Cluster: SPUBLISH and SSUBSCRIBE (sharded pub/sub: the
 * message goes to the channel's shard only, not broadcast over the cluster bus), on the cluster
 * client's dedicated pub/sub connections. A publisher's own listeners hear its events at once,
 * inside publish(), and drop the echo that comes back through Redis.
 *
 * @example
 * const events = await RedisEvents.open({ url });
 * const stop = await events.subscribe((event) => console.log(event));
 * await events.publish({ type: 'created', id: 's1' });
 */
export class RedisEvents implements EventTransport {
  readonly #link: Link;
  readonly #channel: string;
  readonly #onError: (error: Error) => void;
  readonly #listeners = new Set<RedisEventListener>();
  #subscriber: Promise<Link> | undefined;
  #closed = false;
  /** Tells this instance's echoes from other servers' events. */
  readonly #instance = randomBytes(9).toString('base64url');

  private constructor(link: Link, channel: string, onError: (error: Error) => void) {
    this.#link = link;
    this.#channel = channel;
    this.#onError = onError;
  }

  /**
   * Connects the publishing side; the subscriber connects on the first `subscribe`.
   * @throws node-redis's error when Redis cannot be reached
   */
  static async open(options: RedisEventsOptions = {}): Promise<RedisEvents> {
    let report: (error: Error) => void = () => {};
    const link = await openLink({
      ...(options.url !== undefined && { url: options.url }),
      ...(options.cluster !== undefined && { cluster: options.cluster }),
      onError: (error) => report(error),
    });
    const onError = options.onError ?? ((error) => console.error('sessiond: redis events:', error));
    report = onError;
    return new RedisEvents(link, `${options.prefix ?? 'sessiond:'}events`, onError);
  }

  /**
   * Publishes one event to every subscriber of every server.
   * @throws Error once closed; node-redis's error when Redis cannot be reached
   */
  async publish(event: StoreEvent): Promise<void> {
    if (this.#closed) throw new Error('redis events: closed');
    this.#notify(event);
    const command = this.#link.cluster ? 'SPUBLISH' : 'PUBLISH';
    await this.#link.send(this.#channel, [command, this.#channel, frame(this.#instance, event)]);
  }

  /**
   * Calls `listener` for every event published by any server (this one included).
   * @returns a function that stops this listener
   */
  async subscribe(listener: RedisEventListener): Promise<() => Promise<void>> {
    if (this.#closed) throw new Error('redis events: closed');
    // Listening locally starts now, so this server's own events are never missed meanwhile.
    this.#listeners.add(listener);
    try {
      await this.#subscribed();
    } catch (error) {
      this.#listeners.delete(listener);
      throw error;
    }
    return async () => {
      this.#listeners.delete(listener);
    };
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    const subscriber = await this.#subscriber?.catch(() => undefined);
    await Promise.all([this.#link.close(), subscriber !== this.#link && subscriber?.close()]);
  }

  #deliver = (payload: Buffer): void => {
    const framed = unframe(payload);
    if (framed === null || framed[0] === this.#instance) return;
    this.#notify(framed[1]);
  };

  #notify(event: StoreEvent): void {
    for (const listener of this.#listeners) {
      // A listener's throw must reach neither node-redis's reply decoder nor the publisher.
      try {
        listener(event);
      } catch (error) {
        this.#onError(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  #subscribed(): Promise<Link> {
    this.#subscriber ??= (async () => {
      // A cluster client keeps pub/sub on connections of its own; a standalone one needs a second.
      const link = this.#link.cluster ? this.#link : this.#link.duplicate();
      try {
        if (link !== this.#link) await link.connect();
        const onMessage = (message: Buffer) => this.#deliver(message);
        if (link.cluster) await link.raw.sSubscribe(this.#channel, onMessage, true);
        else await link.raw.subscribe(this.#channel, onMessage, true);
      } catch (error) {
        this.#subscriber = undefined;
        if (link !== this.#link) await link.close().catch(() => {});
        throw error;
      }
      return link;
    })();
    return this.#subscriber;
  }
}
