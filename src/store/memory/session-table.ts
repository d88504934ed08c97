import { EMPTY_VARS, type Vars } from './packed-vars.ts';
import { ShardedMap } from './sharded-map.ts';
import { deadlineOf } from '../types.ts';

/**
 * The memory store's sessions as columns: one slot per session, times in Float64Arrays and
 * the rest in plain arrays. One object per session would cost ~130 bytes of headers and boxed
 * doubles before holding any data; columns cost 41 bytes of numbers and five pointers.
 */
export class SessionTable {
  /** id → slot. */
  readonly slots = new ShardedMap<number>();
  ids: Array<string | undefined> = [];
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

  /** Claims a slot for a new session with empty contents. */
  add(id: string, cls: string, now: number): number {
    const slot = this.#free.pop() ?? this.#grow();
    this.slots.set(id, slot);
    this.ids[slot] = id;
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
    this.ids[slot] = undefined;
    // Drop references now so that a freed slot keeps no string alive.
    this.data[slot] = '';
    this.user[slot] = null;
    this.vars[slot] = EMPTY_VARS;
    this.#free.push(slot);
  }

  clear(): void {
    this.slots.clear();
    this.ids = [];
    this.cls = [];
    this.data = [];
    this.user = [];
    this.vars = [];
    this.#free = [];
    for (const column of ['created', 'touched', 'expires', 'timeout', 'scheduled'] as const) {
      this[column] = new Float64Array(1024);
    }
    this.readonly = new Uint8Array(1024);
  }

  #grow(): number {
    const slot = this.ids.length;
    this.ids.push(undefined);
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
