/**
 * Callers waiting for a session's lock. An unlock in this process wakes them at once; a lease
 * that runs out, or an unlock on another server sharing the store, is seen by polling.
 */
export class LockWaiters {
  #waiting = new Map<string, Set<() => void>>();
  #pollMs: number;

  constructor(pollMs = 50) {
    this.#pollMs = pollMs;
  }

  /** Resolves when `id` may be free: woken, polled, or `maxMs` real milliseconds passed. */
  wait(id: string, maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const set = this.#waiting.get(id) ?? new Set();
      this.#waiting.set(id, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiting.get(id) === set) this.#waiting.delete(id);
        resolve();
      };
      const timer = setTimeout(done, Math.max(1, Math.min(maxMs, this.#pollMs)));
      set.add(done);
    });
  }

  /** Wakes everyone waiting for `id`. */
  wake(id: string): void {
    const set = this.#waiting.get(id);
    if (set) for (const done of [...set]) done();
  }
}
