import { randomBytes } from 'node:crypto';
import { EMPTY_VARS, type Vars } from './packed-vars.ts';
import { deadlineOf } from '../types.ts';

/**
 * The memory store's sessions as columns: one slot per session, times in Float64Arrays and
 * the rest in plain arrays. One object per session would cost ~130 bytes of headers and boxed
 * doubles before holding any data; columns cost 41 bytes of numbers and four pointers.
 *
 * Ids and the id → slot index live in typed arrays, off the JS heap (see {@link SlotIndex}).
 * With a million sessions, a string and a Map entry per id were a third of the heap that
 * every major GC marks, and on two CPUs that marking stalled the event loop (issue 6).
 */
export class SessionTable {
  /** id → slot, and the ids themselves. */
  readonly slots = new SlotIndex();
  cls: string[] = [];
  data: string[] = [];
  user: Array<string | null> = [];
  vars: Vars[] = [];
  created = new Float64Array(1024);
  touched = new Float64Array(1024);
  expires = new Float64Array(1024);
  /** Idle timeout in seconds. */
  timeout = new Float64Array(1024);
  /** The expiry bucket the slot is scheduled in (0: none). */
  scheduled = new Float64Array(1024);
  readonly = new Uint8Array(1024);
  /** Slots ever used: every slot below it is either live or in `#free`. */
  #high = 0;
  #free: number[] = [];

  get size(): number {
    return this.slots.size;
  }

  /** The slot of `id` if it holds a session that is live at `now`. */
  live(id: string, now: number): number | undefined {
    const slot = this.slots.get(id);
    return slot !== undefined && now < this.deadline(slot) ? slot : undefined;
  }

  deadline(slot: number): number {
    return deadlineOf(this.touched[slot]!, this.timeout[slot]!, this.expires[slot]!);
  }

  /** Claims a slot for a new session with empty contents; `id` must not be in the table. */
  add(id: string, cls: string, now: number): number {
    const slot = this.#free.pop() ?? this.#grow();
    this.slots.set(id, slot);
    this.cls[slot] = cls;
    this.data[slot] = '';
    this.user[slot] = null;
    this.vars[slot] = EMPTY_VARS;
    this.created[slot] = now;
    this.touched[slot] = now;
    this.expires[slot] = 0;
    this.timeout[slot] = 0;
    this.scheduled[slot] = 0;
    this.readonly[slot] = 0;
    return slot;
  }

  /** Frees the slot of `id`; the caller has already updated its indexes. */
  remove(id: string, slot: number): void {
    this.slots.delete(id);
    // Drop references now so that a freed slot keeps no string alive.
    this.data[slot] = '';
    this.user[slot] = null;
    this.vars[slot] = EMPTY_VARS;
    this.#free.push(slot);
  }

  clear(): void {
    this.slots.clear();
    this.cls = [];
    this.data = [];
    this.user = [];
    this.vars = [];
    this.#free = [];
    this.#high = 0;
    for (const column of ['created', 'touched', 'expires', 'timeout', 'scheduled'] as const) {
      this[column] = new Float64Array(1024);
    }
    this.readonly = new Uint8Array(1024);
  }

  #grow(): number {
    const slot = this.#high++;
    if (slot >= this.created.length) {
      const size = this.created.length * 2;
      this.created = grown(this.created, size);
      this.touched = grown(this.touched, size);
      this.expires = grown(this.expires, size);
      this.timeout = grown(this.timeout, size);
      this.scheduled = grown(this.scheduled, size);
      const flags = new Uint8Array(size);
      flags.set(this.readonly);
      this.readonly = flags;
    }
    return slot;
  }
}

function grown(column: Float64Array, size: number): Float64Array<ArrayBuffer> {
  const next = new Float64Array(size);
  next.set(column);
  return next;
}

/** Bytes per slot for its id: a length byte, then the id if it is short and one byte a char. */
const STRIDE = 40;
/** The length byte of a free slot; a used slot stores length + 1. */
const FREE = 0;
/** The length byte of an id kept as a string in `#others` (too long, or a char over 0xff). */
const OTHER = 0xff;
const FIRST_SLOTS = 1024;

// A per-process secret seed: a client that chooses session ids cannot aim them all at one probe
// chain (hash flooding) without knowing it.
const SEED = randomBytes(4).readInt32LE(0);

/**
 * A seeded hash of a string, two UTF-16 code units a step; each step folds the high bits back
 * so that every bit of the id reaches the low bits the table uses.
 */
function hashOf(id: string): number {
  const length = id.length;
  let hash = SEED ^ length;
  let i = 1;
  for (; i < length; i += 2) {
    hash = Math.imul(hash ^ (id.charCodeAt(i - 1) | (id.charCodeAt(i) << 16)), 0x9e3779b1);
    hash ^= hash >>> 15;
  }
  if (i === length) hash = Math.imul(hash ^ id.charCodeAt(i - 1), 0x9e3779b1);
  hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
  return hash ^ (hash >>> 13);
}

/**
 * A map from session id to slot number, kept in typed arrays: the id bytes per slot, the hash
 * per slot, and an open-addressing table of slot numbers (linear probing, at most half full,
 * deletion by backward shift so that no tombstones pile up and no rehash is due in steady
 * state). The JS heap holds a handful of objects however many sessions there are.
 *
 * Iteration walks the slots in order and reads each one's id as it gets there. A slot keeps
 * its session for the session's whole life, so an id present for the whole iteration is
 * visited exactly once, whatever is added or removed meanwhile: the guarantee SCAN gives.
 */
export class SlotIndex {
  /** STRIDE bytes per slot: length + 1 (FREE, OTHER), then the id's bytes. */
  #keys = new Uint8Array(FIRST_SLOTS * STRIDE);
  #hashes = new Int32Array(FIRST_SLOTS);
  /** Ids that do not fit `#keys`, by slot. */
  #others = new Map<number, string>();
  /** slot + 1 per entry, 0 for empty; its length is a power of two. */
  #table = new Int32Array(FIRST_SLOTS * 2);
  #size = 0;
  /** Slots below it may be in use; iteration stops there. */
  #high = 0;

  get size(): number {
    return this.#size;
  }

  get(id: string): number | undefined {
    const hash = hashOf(id);
    const table = this.#table;
    const mask = table.length - 1;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return undefined;
      const slot = entry - 1;
      if (this.#hashes[slot] === hash && this.#holds(slot, id)) return slot;
    }
  }

  /** Records `id` at `slot`; the id must not be in the index yet, and the slot must be free. */
  set(id: string, slot: number): void {
    if (slot >= this.#hashes.length) this.#growSlots(slot + 1);
    if (2 * (this.#size + 1) > this.#table.length) this.#rehash(this.#table.length * 2);
    const hash = hashOf(id);
    const table = this.#table;
    const mask = table.length - 1;
    let i = hash & mask;
    for (; table[i] !== 0; i = (i + 1) & mask) {
      const other = table[i]! - 1;
      if (this.#hashes[other] === hash && this.#holds(other, id)) {
        throw new Error('session table: id is already present');
      }
    }
    table[i] = slot + 1;
    this.#hashes[slot] = hash;
    this.#store(slot, id);
    this.#size++;
    if (slot >= this.#high) this.#high = slot + 1;
  }

  delete(id: string): boolean {
    const hash = hashOf(id);
    const table = this.#table;
    const mask = table.length - 1;
    let i = hash & mask;
    for (; ; i = (i + 1) & mask) {
      const entry = table[i]!;
      if (entry === 0) return false;
      if (this.#hashes[entry - 1] === hash && this.#holds(entry - 1, id)) break;
    }
    const slot = table[i]! - 1;
    // Backward shift: move later entries of the run into the gap unless their home lies
    // cyclically in (gap, j], so that every entry stays reachable from its home.
    for (let j = (i + 1) & mask; table[j] !== 0; j = (j + 1) & mask) {
      const home = this.#hashes[table[j]! - 1]! & mask;
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (stays) continue;
      table[i] = table[j]!;
      i = j;
    }
    table[i] = 0;
    this.#keys[slot * STRIDE] = FREE;
    this.#others.delete(slot);
    this.#size--;
    return true;
  }

  /** The id at `slot`, or undefined when the slot is free. */
  idOf(slot: number): string | undefined {
    if (!(slot >= 0 && slot < this.#high)) return undefined;
    const keys = this.#keys;
    const at = slot * STRIDE;
    const head = keys[at]!;
    if (head === FREE) return undefined;
    if (head === OTHER) return this.#others.get(slot);
    return String.fromCharCode.apply(null, keys.subarray(at + 1, at + head) as unknown as number[]);
  }

  clear(): void {
    this.#keys = new Uint8Array(FIRST_SLOTS * STRIDE);
    this.#hashes = new Int32Array(FIRST_SLOTS);
    this.#others.clear();
    this.#table = new Int32Array(FIRST_SLOTS * 2);
    this.#size = 0;
    this.#high = 0;
  }

  /** Slots below it may be in use: a walk over slot numbers stops there. */
  get end(): number {
    return this.#high;
  }

  /** Whether `slot` holds an id; a walk asks this before making the id's string. */
  used(slot: number): boolean {
    return slot < this.#high && this.#keys[slot * STRIDE] !== FREE;
  }

  *keys(): Generator<string, void> {
    for (let slot = 0; slot < this.#high; slot++) {
      const id = this.idOf(slot);
      if (id !== undefined) yield id;
    }
  }

  *[Symbol.iterator](): Generator<[string, number], void> {
    for (let slot = 0; slot < this.#high; slot++) {
      const id = this.idOf(slot);
      if (id !== undefined) yield [id, slot];
    }
  }

  #holds(slot: number, id: string): boolean {
    const keys = this.#keys;
    const at = slot * STRIDE;
    const head = keys[at]!;
    if (head === OTHER) return this.#others.get(slot) === id;
    if (head !== id.length + 1) return false;
    for (let i = 0; i < id.length; i++) {
      if (keys[at + 1 + i] !== id.charCodeAt(i)) return false;
    }
    return true;
  }

  #store(slot: number, id: string): void {
    const keys = this.#keys;
    const at = slot * STRIDE;
    if (id.length < STRIDE - 1) {
      let i = 0;
      for (; i < id.length; i++) {
        const code = id.charCodeAt(i);
        if (code > 0xff) break;
        keys[at + 1 + i] = code;
      }
      if (i === id.length) {
        keys[at] = id.length + 1;
        return;
      }
    }
    keys[at] = OTHER;
    this.#others.set(slot, id);
  }

  #growSlots(least: number): void {
    let size = this.#hashes.length;
    while (size < least) size *= 2;
    const keys = new Uint8Array(size * STRIDE);
    keys.set(this.#keys);
    this.#keys = keys;
    const hashes = new Int32Array(size);
    hashes.set(this.#hashes);
    this.#hashes = hashes;
  }

  /** Reinserts every entry into a table of `size` (a power of two), from the stored hashes. */
  #rehash(size: number): void {
    const old = this.#table;
    const table = new Int32Array(size);
    const mask = size - 1;
    for (let at = 0; at < old.length; at++) {
      const entry = old[at]!;
      if (entry === 0) continue;
      let i = this.#hashes[entry - 1]! & mask;
      while (table[i] !== 0) i = (i + 1) & mask;
      table[i] = entry;
    }
    this.#table = table;
  }
}
