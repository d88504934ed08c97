import { Buffer } from 'node:buffer';
import type { ServerResponse } from 'node:http';
import type { PubSub, Subscriber } from '../pubsub.ts';

/** How an {@link EventStream} behaves. */
export interface EventStreamOptions {
  /** Channels to subscribe to, as byte strings (exact names, e.g. `events:created`). */
  channels: readonly string[];
  /** Redis glob patterns to subscribe to, as byte strings (e.g. `events:*`). */
  patterns: readonly string[];
  /** Unsent bytes after which a consumer counts as too slow and is cut off. */
  maxBuffered: number;
  /** A comment line is sent this often, so idle proxies keep the stream and dead peers show. */
  heartbeatMs: number;
  /** Called once when the stream is cut off for being too slow. */
  onSlowConsumer(): void;
}

/**
 * One Server-Sent Events response (https://html.spec.whatwg.org/multipage/server-sent-events.html)
 * that receives pub/sub messages: each is an event named after its channel whose data is the
 * message. Unsubscribes when the response closes, whoever closes it.
 */
export class EventStream implements Subscriber {
  #response: ServerResponse;
  #pubsub: PubSub;
  #options: EventStreamOptions;
  #heartbeat: NodeJS.Timeout | undefined;
  #closed = false;
  #checkPending = false;

  constructor(response: ServerResponse, pubsub: PubSub, options: EventStreamOptions) {
    this.#response = response;
    this.#pubsub = pubsub;
    this.#options = options;
  }

  /** Sends the headers and subscribes. */
  open(extraHeaders: Readonly<Record<string, string>> = {}): void {
    const response = this.#response;
    response.once('close', () => this.close());
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Tells nginx not to buffer the stream, which would hold events back.
      'x-accel-buffering': 'no',
      ...extraHeaders,
    });
    // A first comment flushes the headers, so the client knows it is subscribed.
    response.write(': subscribed\n\n');
    for (const channel of this.#options.channels) this.#pubsub.subscribe(this, channel);
    for (const pattern of this.#options.patterns) this.#pubsub.psubscribe(this, pattern);
    this.#heartbeat = setInterval(() => this.#write(': ping\n\n'), this.#options.heartbeatMs);
    this.#heartbeat.unref();
  }

  deliver(channel: string, message: string): void {
    // A channel name on its own line and every line of the message prefixed with `data:`:
    // defends against event injection, where a CR or LF would start a forged field or event.
    const name = text(channel).replace(/[\r\n]/g, ' ');
    const data = text(message)
      .split(/\r\n|\r|\n/)
      .map((line) => `data: ${line}\n`)
      .join('');
    this.#write(`event: ${name}\n${data}\n`);
  }

  /** Unsubscribes and ends the response; safe to call more than once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    for (const channel of this.#options.channels) this.#pubsub.unsubscribe(this, channel);
    for (const pattern of this.#options.patterns) this.#pubsub.punsubscribe(this, pattern);
    if (!this.#response.writableEnded) this.#response.end();
  }

  #write(chunk: string): void {
    if (this.#closed || this.#response.destroyed) return;
    const response = this.#response;
    response.write(chunk);
    const { maxBuffered } = this.#options;
    // Node corks a response for the rest of the tick, so a burst of events sits in
    // writableLength even for a fast reader: the limit is judged once the tick has handed the
    // burst to the socket, with a hard ceiling meanwhile so one burst cannot grow without bound.
    if (response.writableLength > maxBuffered * BURST_FACTOR) {
      this.#cutOff();
    } else if (response.writableLength > maxBuffered && !this.#checkPending) {
      this.#checkPending = true;
      setImmediate(() => {
        this.#checkPending = false;
        if (response.writableLength > maxBuffered) this.#cutOff();
      });
    }
  }

  #cutOff(): void {
    if (this.#closed) return;
    // A consumer that does not read is cut off rather than allowed to grow server memory
    // without bound; ending would wait for it to read, so the socket is destroyed.
    this.#options.onSlowConsumer();
    this.close();
    this.#response.destroy();
  }
}

/** How far past maxBuffered one tick's burst may go before the stream is cut at once. */
const BURST_FACTOR = 16;

/** A byte string (as pub/sub carries it) as text; ids and counts are ASCII. */
const text = (bytes: string): string => Buffer.from(bytes, 'latin1').toString('utf8');
