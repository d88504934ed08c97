import type { StoreEvent } from '../store/types.ts';

/**
 * Session events, produced by the engine exactly once each (PROTOCOL.md: the `events:*`
 * channels). For gc and empty the payload is a count, for the others a session id.
 */
export type SessionEvent = StoreEvent;

export type SessionEventType = SessionEvent['type'];

export type EventListener = (event: SessionEvent) => void;

/**
 * A small synchronous event bus. A listener that throws is reported to `onError` and never
 * reaches the operation that emitted, nor the other listeners.
 */
export class EventBus {
  #listeners = new Set<EventListener>();
  #onError: (error: unknown) => void;

  constructor(onError: (error: unknown) => void) {
    this.#onError = onError;
  }

  /** Calls `listener` for every event; returns a function that stops it. */
  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get hasListeners(): boolean {
    return this.#listeners.size > 0;
  }

  emit(event: SessionEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        this.#onError(error);
      }
    }
  }
}
