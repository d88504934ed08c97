/**
 * A Map from string keys split over many small Maps. One V8 Map of a million entries rehashes
 * all of them in one step when it grows or when deletions fill it: a 90–210 ms stall of the
 * whole server about every 1.1M creates (scripts/soak.ts found it). Split 256 ways, a rehash
 * moves about 4,000 entries.
 *
 * Iteration walks the shards in turn, each with its own Map iterator, so it keeps the Map's
 * guarantee: a key present for the whole iteration is visited once.
 */
const SHARDS = 256;

export class ShardedMap<V> {
  readonly #shards = Array.from({ length: SHARDS }, () => new Map<string, V>());
  #size = 0;

  get size(): number {
    return this.#size;
  }

  get(key: string): V | undefined {
    return this.#shard(key).get(key);
  }

  set(key: string, value: V): void {
    const shard = this.#shard(key);
    const before = shard.size;
    shard.set(key, value);
    this.#size += shard.size - before;
  }

  delete(key: string): boolean {
    const deleted = this.#shard(key).delete(key);
    if (deleted) this.#size--;
    return deleted;
  }

  clear(): void {
    for (const shard of this.#shards) shard.clear();
    this.#size = 0;
  }

  *keys(): Generator<string, void> {
    for (const shard of this.#shards) yield* shard.keys();
  }

  *[Symbol.iterator](): Generator<[string, V], void> {
    for (const shard of this.#shards) yield* shard;
  }

  /**
   * The shard of `key`, from a hash of its last eight code units: random ids spread evenly, and
   * so do counters like `user-17` (the end changes fastest). Not a security boundary.
   */
  #shard(key: string): Map<string, V> {
    let hash = 0x811c9dc5;
    for (let i = Math.max(0, key.length - 8); i < key.length; i++) {
      hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
    }
    return this.#shards[(hash ^ (hash >>> 16)) & (SHARDS - 1)]!;
  }
}
