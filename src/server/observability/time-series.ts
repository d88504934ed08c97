/** One entry of a {@link TimeSeries}: when it was taken (ms since the epoch) and what. */
export interface Point<T> {
  at: number;
  value: T;
}

/**
 * A fixed-size ring of the most recent points: memory stays the same however long the server
 * runs. The admin page's charts read the last hour from one of these.
 *
 * @example
 * const series = new TimeSeries<number>(360); // an hour at one point per 10 s
 * series.push(Date.now(), 42);
 * series.points(); // oldest first
 */
export class TimeSeries<T> {
  readonly capacity: number;
  #ring: Array<Point<T> | undefined>;
  /** Where the next point goes; once the ring is full, also where the oldest point is. */
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('capacity must be a positive integer');
    this.capacity = capacity;
    this.#ring = new Array<Point<T> | undefined>(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Adds a point, dropping the oldest when full. */
  push(at: number, value: T): void {
    this.#ring[this.#next] = { at, value };
    this.#next = (this.#next + 1) % this.capacity;
    if (this.#size < this.capacity) this.#size++;
  }

  /** The newest point, if any. */
  latest(): Point<T> | undefined {
    return this.#size === 0
      ? undefined
      : this.#ring[(this.#next - 1 + this.capacity) % this.capacity];
  }

  /** Every point, oldest first; with `since`, only those taken at or after it. */
  points(since = -Infinity): Array<Point<T>> {
    const out: Array<Point<T>> = [];
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    for (let i = 0; i < this.#size; i++) {
      const point = this.#ring[(start + i) % this.capacity]!;
      if (point.at >= since) out.push(point);
    }
    return out;
  }
}
