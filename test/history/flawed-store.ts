/**
 * A memory store with two planted bugs, so that a test can show the checkers catching them in a
 * real run, through the server and the wire: LOCK grants whoever asks, holder or not, and INC
 * reads, yields to the event loop, then writes (the lost update of a non-atomic increment).
 */
import { MemoryStore } from '../../src/store/memory/memory-store.ts';
import {
  NO_SESSION,
  type LockAttempt,
  type StoreLimits,
  type WriteFailure,
} from '../../src/store/types.ts';

export class FlawedStore extends MemoryStore {
  #fence = 0;

  /** Grants every LOCK at once, with a fresh key: any number of holders at a time. */
  override async lock(id: string, leaseMs: number, now: number): Promise<LockAttempt> {
    const real = await super.lock(id, leaseMs, now);
    if (real === 'nosession') return real;
    return { acquired: true, key: ++this.#fence, until: now + leaseMs };
  }

  /** Every key unlocks. */
  override async unlock(): Promise<boolean> {
    return true;
  }

  /** Read, yield, write: two INCs in the same turn both add to the same old value. */
  override async incVar(
    id: string,
    name: string,
    by: bigint,
    now: number,
    limits: StoreLimits,
  ): Promise<bigint | 'notint' | 'limit' | WriteFailure> {
    const before = await this.getVar(id, name, now);
    if (before === NO_SESSION) return 'nosession';
    await new Promise((resolve) => setImmediate(resolve));
    const sum = BigInt(before ?? 0) + by;
    const outcome = await this.setVars(id, [[name, sum.toString()]], now, limits);
    return outcome === 'ok' ? sum : outcome;
  }
}
