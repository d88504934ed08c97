/**
 * Due dates of sessions, bucketed by second, so that the sweep costs in proportion to what
 * expires rather than to all sessions.
 *
 * Each session sits in exactly one bucket: the one for its deadline when it was scheduled.
 * Touching a session moves its deadline later without moving it (that would cost a write per
 * access); when its bucket comes due, the owner finds it still live and schedules it again.
 * A deadline that moves earlier is scheduled again at once, and the owner's record of which
 * bucket is current turns the old entry stale.
 *
 * A bucket keeps its ids as bytes in a typed array (off the JS heap) until it comes due, and
 * only then turns them into strings. With a million sessions the wheel would otherwise hold a
 * million strings and pointers that every major GC has to mark (issue 6: main-thread marking
 * stalled the event loop), and a destroyed session's id until its old deadline.
 */
export const BUCKET_MS = 1000;

/** The bucket a deadline falls in: deadlines in ((key-1)*BUCKET_MS, key*BUCKET_MS]. */
export const bucketOf = (deadline: number): number => Math.ceil(deadline / BUCKET_MS);

/** Ids up to this length that are one byte per code unit go in the bytes; others stay strings. */
const MAX_PACKED_LENGTH = 255;
const FIRST_BYTES = 1024;

/** Ids of one bucket: length-prefixed latin1 bytes, plus the few ids that do not fit them. */
class Bucket {
  bytes = new Uint8Array(FIRST_BYTES);
  used = 0;
  others: string[] = [];
  /** The ids as strings, once the bucket has come due; then `bytes` is no longer used. */
  due: string[] | undefined;

  add(id: string): void {
    if (this.due) {
      this.due.push(id);
      return;
    }
    const length = id.length;
    if (length > MAX_PACKED_LENGTH) {
      this.others.push(id);
      return;
    }
    if (this.used + 1 + length > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.used + 1 + length));
      bigger.set(this.bytes.subarray(0, this.used));
      this.bytes = bigger;
    }
    const bytes = this.bytes;
    let at = this.used + 1;
    for (let i = 0; i < length; i++) {
      const code = id.charCodeAt(i);
      if (code > 0xff) {
        this.others.push(id);
        return;
      }
      bytes[at++] = code;
    }
    bytes[this.used] = length;
    this.used = at;
  }

  /** The bucket's ids as an array the owner takes from and puts back into. */
  open(): string[] {
    if (this.due) return this.due;
    const ids = this.others;
    const view = Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.used);
    for (let at = 0; at < this.used;) {
      const length = view[at]!;
      ids.push(view.toString('latin1', at + 1, at + 1 + length));
      at += 1 + length;
    }
    this.due = ids;
    this.bytes = EMPTY;
    this.used = 0;
    return ids;
  }
}

const EMPTY = new Uint8Array(0);

export class ExpiryWheel {
  #buckets = new Map<number, Bucket>();
  /** Bucket keys in a binary min-heap, so the next due bucket is found in O(log n). */
  #heap: number[] = [];

  /** Puts `id` in the bucket of `deadline`; returns that bucket's key. */
  schedule(id: string, deadline: number): number {
    const key = bucketOf(deadline);
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = new Bucket();
      this.#buckets.set(key, bucket);
      this.#heapPush(key);
    }
    bucket.add(id);
    return key;
  }

  /**
   * The earliest bucket that may hold a deadline at or before `now`, or undefined.
   * The caller takes ids from it with `pop`, puts back those not yet due with `push`, and
   * drops it with `dropEarliest` when empty. A bucket's ids become strings only here.
   */
  earliestDue(now: number): { key: number; ids: string[] } | undefined {
    const key = this.#heap[0];
    if (key === undefined || (key - 1) * BUCKET_MS >= now) return undefined;
    const bucket = this.#buckets.get(key);
    if (!bucket) throw new Error('expiry wheel: heap and buckets disagree');
    return { key, ids: bucket.open() };
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
