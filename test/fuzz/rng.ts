import fc from 'fast-check';

/**
 * A seeded pseudo-random generator (sfc32, from PractRand): a fuzz run's inputs follow from its
 * seed, so a failing run can be replayed with `--seed`. Not for secrets.
 *
 * @example
 * const rng = new Rng(42);
 * rng.int(1, 6); // the same on every run with seed 42
 */
export class Rng {
  #a = 0x9e3779b9;
  #b = 0x243f6a88;
  #c = 0xb7e15162;
  #d: number;

  constructor(seed: number) {
    this.#d = seed >>> 0;
    // The first outputs of sfc32 still show the seed's pattern; discard them.
    for (let i = 0; i < 15; i++) this.uint32();
  }

  /** A uniform 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.uint32() / 2 ** 32;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** An integer in [0, max] on a log scale, so that small and large values are both common. */
  size(max: number): number {
    return Math.min(max, Math.floor(Math.exp(this.float() * Math.log(max + 1))));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  /** One of `entries`, each as likely as its weight. */
  weighted<T>(entries: ReadonlyArray<readonly [T, number]>): T {
    let roll = this.float() * entries.reduce((sum, [, weight]) => sum + weight, 0);
    for (const [item, weight] of entries) {
      roll -= weight;
      if (roll < 0) return item;
    }
    return entries.at(-1)![0];
  }

  bytes(length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    for (let i = 0; i < length; i++) out[i] = this.uint32() & 0xff;
    return out;
  }

  /** A generator of its own, for one attacker, derived from this one's sequence. */
  fork(): Rng {
    return new Rng(this.uint32());
  }

  /** One value of a fast-check arbitrary, drawn with a seed from this generator. */
  sample<T>(arbitrary: fc.Arbitrary<T>): T {
    return fc.sample(arbitrary, { seed: this.uint32() | 0, numRuns: 1 })[0]!;
  }
}
