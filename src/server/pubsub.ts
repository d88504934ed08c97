import type { Engine } from '../core/engine.ts';
import type { SessionEvent } from '../core/events.ts';

/** A connection that can receive published messages. */
export interface Subscriber {
  /** Delivers `message` on `channel`, matched by `pattern` if it came through PSUBSCRIBE. */
  deliver(channel: string, message: string, pattern: string | null): void;
}

/**
 * Redis pub/sub semantics over the engine's events: each event is published once on
 * `events:<type>`, its message the session id (for gc and empty, the count).
 */
export class PubSub {
  #channels = new Map<string, Set<Subscriber>>();
  #patterns = new Map<string, Set<Subscriber>>();
  #unsubscribe: () => void;

  constructor(engine: Engine) {
    this.#unsubscribe = engine.subscribe((event) => {
      // Most servers have no subscriber: then an event costs no channel name and no lookup.
      if (this.#channels.size > 0 || this.#patterns.size > 0)
        this.publish(channelOf(event), messageOf(event));
    });
  }

  subscribe(subscriber: Subscriber, channel: string): void {
    add(this.#channels, channel, subscriber);
  }

  unsubscribe(subscriber: Subscriber, channel: string): void {
    remove(this.#channels, channel, subscriber);
  }

  psubscribe(subscriber: Subscriber, pattern: string): void {
    add(this.#patterns, pattern, subscriber);
  }

  punsubscribe(subscriber: Subscriber, pattern: string): void {
    remove(this.#patterns, pattern, subscriber);
  }

  /** Delivers to channel subscribers, then to every matching pattern; the number of deliveries. */
  publish(channel: string, message: string): number {
    let delivered = 0;
    for (const subscriber of this.#channels.get(channel) ?? []) {
      subscriber.deliver(channel, message, null);
      delivered++;
    }
    for (const [pattern, subscribers] of this.#patterns) {
      if (!globMatch(pattern, channel)) continue;
      for (const subscriber of subscribers) {
        subscriber.deliver(channel, message, pattern);
        delivered++;
      }
    }
    return delivered;
  }

  close(): void {
    this.#unsubscribe();
    this.#channels.clear();
    this.#patterns.clear();
  }
}

export const channelOf = (event: SessionEvent): string => `events:${event.type}`;

export const messageOf = (event: SessionEvent): string =>
  'count' in event ? String(event.count) : event.id;

function add(map: Map<string, Set<Subscriber>>, key: string, subscriber: Subscriber): void {
  const set = map.get(key);
  if (set) set.add(subscriber);
  else map.set(key, new Set([subscriber]));
}

function remove(map: Map<string, Set<Subscriber>>, key: string, subscriber: Subscriber): void {
  const set = map.get(key);
  if (set?.delete(subscriber) && set.size === 0) map.delete(key);
}

/**
 * Redis's glob (stringmatchlen): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and `\` to escape.
 * Iterative with backtracking to the last `*`, so a hostile pattern costs O(pattern × text).
 */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const c = pattern[p];
    if (c === '*') {
      starP = p++;
      starT = t;
      continue;
    }
    if (c !== undefined && p < pattern.length) {
      const [matched, next] = matchOne(pattern, p, text[t]!);
      if (matched) {
        p = next;
        t++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP + 1;
    t = ++starT;
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** Whether the pattern element at `p` matches `ch`, and where the next element starts. */
function matchOne(pattern: string, p: number, ch: string): [boolean, number] {
  const c = pattern[p]!;
  if (c === '?') return [true, p + 1];
  if (c === '\\' && p + 1 < pattern.length) return [pattern[p + 1] === ch, p + 2];
  if (c !== '[') return [c === ch, p + 1];
  let i = p + 1;
  const negate = pattern[i] === '^';
  if (negate) i++;
  let matched = false;
  while (i < pattern.length && pattern[i] !== ']') {
    if (pattern[i] === '\\' && i + 1 < pattern.length) {
      matched ||= pattern[i + 1] === ch;
      i += 2;
    } else if (pattern[i + 1] === '-' && i + 2 < pattern.length && pattern[i + 2] !== ']') {
      const [lo, hi] = [pattern[i]!, pattern[i + 2]!].sort();
      matched ||= ch >= lo! && ch <= hi!;
      i += 3;
    } else {
      matched ||= pattern[i] === ch;
      i++;
    }
  }
  return [matched !== negate, i + 1];
}
