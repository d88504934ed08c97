/**
 * Due dates of sessions, bucketed by second, so that the sweep costs in proportion to what
 * expires rather than to all sessions.
 *
 * Each session sits in exactly one bucket: the one for its deadline when it was scheduled.
 * Touching a session moves its deadline later without moving it (that would cost a write per
 * access); when its bucket comes due, the owner finds it still live and schedules it again.
 * A deadline that moves earlier is scheduled again at once, and the owner's record of which
 * bucket is current turns the old entry stale.
 */
export const BUCKET_MS = 1000;

/** The bucket a deadline falls in: deadlines in ((key-1)*BUCKET_MS, key*BUCKET_MS]. */
export const bucketOf = (deadline: number): number => Math.ceil(deadline / BUCKET_MS);

export class ExpiryWheel {
  #buckets = new Map<number, string[]>();
  /** Bucket keys in a binary min-heap, so the next due bucket is found in O(log n). */
  #heap: number[] = [];

  /** Puts `id` in the bucket of `deadline`; returns that bucket's key. */
  schedule(id: string, deadline: number): number {
    const key = bucketOf(deadline);
    const bucket = this.#buckets.get(key);
    if (bucket) bucket.push(id);
    else {
      this.#buckets.set(key, [id]);
      this.#heapPush(key);
    }
    return key;
  }

  /**
   * The earliest bucket that may hold a deadline at or before `now`, or undefined.
   * The caller takes ids from it with `take` and drops it with `drop` when empty.
   */
  earliestDue(now: number): { key: number; ids: string[] } | undefined {
    const key = this.#heap[0];
    if (key === undefined || (key - 1) * BUCKET_MS >= now) return undefined;
    const ids = this.#buckets.get(key);
    if (!ids) throw new Error('expiry wheel: heap and buckets disagree');
    return { key, ids };
  }

  /** Forgets the earliest bucket (call once its ids are handled). */
  dropEarliest(): void {
    const key = this.#heapPop();
    if (key !== undefined) this.#buckets.delete(key);
  }

  clear(): void {
    this.#buckets.clear();
    this.#heap = [];
  }

  #heapPush(key: number): void {
    const heap = this.#heap;
    let i = heap.push(key) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const up = heap[parent]!;
      if (up <= key) break;
      heap[i] = up;
      i = parent;
    }
    heap[i] = key;
  }

  #heapPop(): number | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]! < heap[left]! ? right : left;
      if (heap[child]! >= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
