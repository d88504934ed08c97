import { randomBytes } from 'node:crypto';
import { setImmediate as turn } from 'node:timers/promises';
import { SessiondError } from '../../errors.ts';
import {
  addInt64,
  NO_SESSION,
  TOUCH_RESOLUTION_MS,
  type ExpiredSession,
  type GetOptions,
  type ListOptions,
  type ListPage,
  type Awaitable,
  type LockAttempt,
  type NoSession,
  type SessionInit,
  type SessionPatch,
  type SessionRecord,
  type Store,
  type StoreLimits,
  type WriteFailure,
} from '../types.ts';
import { ExpiryWheel } from './expiry-wheel.ts';
import {
  countVars,
  fromMap,
  getVar,
  incPacked,
  incPackedSum,
  toMap,
  updateVars,
  withVar,
} from './packed-vars.ts';
import { SessionTable } from './session-table.ts';

export interface MemoryStoreOptions {
  /** Variable names kept in an index for FIND and LISTVAR; other names are found by a scan. */
  indexedVars?: readonly string[];
}

interface LockState {
  /** The last key handed out; keys increase per session even across unlocks. */
  fence: number;
  key: number;
  until: number;
}

interface OpenCursor {
  ids: Iterator<string, void>;
  usedAt: number;
}

const DEFAULT_PAGE = 100;
/**
 * Slots an unindexed scan (FIND, LISTVAR, LIST) walks between turns of the event loop: defends
 * against one client's scan of a million sessions stalling every other client for ~300 ms.
 */
const SCAN_BATCH = 16_384;
const CURSOR_IDLE_MS = 5 * 60_000;
const MAX_OPEN_CURSORS = 1024;

/**
 * The reference store: every session in this process's memory, nothing on disk.
 *
 * Every operation but the unindexed scans (FIND, LISTVAR, LIST) runs to completion without
 * awaiting, so each is atomic by construction, and the data methods answer at once rather than
 * with a promise (typed as the Store contract has them, so that test doubles may extend this
 * class with slower ones). The scans walk in batches with turns of the event loop between them,
 * as Redis's SCAN does, and see what SCAN sees.
 */
export class MemoryStore implements Store {
  readonly kind = 'memory';
  #table = new SessionTable();
  #wheel = new ExpiryWheel();
  #indexed: ReadonlySet<string>;
  /** name → value → ids, for indexed names only. */
  #varIndex = new Map<string, Map<string, Set<string>>>();
  #userIndex = new Map<string, Set<string>>();
  /** Sessions held per class, expired-but-unswept included; `count` sweeps first. */
  #classCounts = new Map<string, number>();
  #locks = new Map<string, LockState>();
  #cursors = new Map<string, OpenCursor>();
  /** Sessions that `count` swept; handed to the next `sweep` so no expiry goes unreported. */
  #reaped: ExpiredSession[] = [];
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#indexed = new Set(options.indexedVars ?? []);
    for (const name of this.#indexed) this.#varIndex.set(name, new Map());
  }

  create(init: SessionInit, now: number): Awaitable<boolean> {
    this.#open();
    const existing = this.#table.slots.get(init.id);
    if (existing !== undefined) {
      if (now < this.#table.deadline(existing)) return false;
      this.#remove(init.id, existing);
    }
    this.#insert(init, now);
    return true;
  }

  get(id: string, now: number, options: GetOptions): Awaitable<SessionRecord | null> {
    this.#open();
    const t = this.#table;
    const slot = t.live(id, now);
    if (slot === undefined) return null;
    if (options.touch) this.#touch(slot, now);
    const lock = this.#locks.get(id);
    return {
      id,
      cls: t.cls[slot]!,
      data: t.data[slot]!,
      user: t.user[slot]!,
      timeout: t.timeout[slot]!,
      expires: t.expires[slot]!,
      created: t.created[slot]!,
      touched: t.touched[slot]!,
      readonly: t.readonly[slot] === 1,
      vars: options.vars ? toMap(t.vars[slot]!) : new Map<string, string>(),
      lock: lock && lock.until > now ? { key: lock.key, until: lock.until } : null,
    };
  }

  getVar(id: string, name: string, now: number): Awaitable<string | undefined | NoSession> {
    this.#open();
    const slot = this.#table.live(id, now);
    if (slot === undefined) return NO_SESSION;
    this.#touch(slot, now);
    return getVar(this.#table.vars[slot]!, name);
  }

  setVars(
    id: string,
    vars: ReadonlyArray<readonly [string, string]>,
    now: number,
    limits: StoreLimits,
  ): Awaitable<'ok' | 'limit' | WriteFailure> {
    const slot = this.#writable(id, now);
    if (typeof slot === 'string') return slot;
    if (vars.length === 1) {
      const pair = vars[0]!;
      return this.#setVar(id, slot, pair[0], pair[1], limits);
    }
    const t = this.#table;
    let next = t.vars[slot]!;
    // Each name's value before and after, checked against maxVars before anything changes.
    const changed = new Map<string, [before: string | undefined, after: string]>();
    let added = 0;
    for (const [name, value] of vars) {
      const seen = changed.get(name);
      if (seen) seen[1] = value;
      else {
        const before = getVar(next, name);
        if (before === undefined) added++;
        changed.set(name, [before, value]);
      }
    }
    if (added > 0 && countVars(next) + added > limits.maxVars) return 'limit';
    for (const [name, [, value]] of changed) next = withVar(next, name, value);
    t.vars[slot] = next;
    for (const [name, [before, after]] of changed) this.#indexVar(id, name, before, after);
    return 'ok';
  }

  unsetVars(id: string, names: readonly string[], now: number): Awaitable<number | WriteFailure> {
    const slot = this.#writable(id, now);
    if (typeof slot === 'string') return slot;
    let removed = 0;
    this.#table.vars[slot] = updateVars(this.#table.vars[slot]!, (map) => {
      for (const name of names) {
        const before = map.get(name);
        if (before !== undefined && map.delete(name)) {
          removed++;
          this.#indexVar(id, name, before, undefined);
        }
      }
    });
    return removed;
  }

  incVar(
    id: string,
    name: string,
    by: bigint,
    now: number,
    limits: StoreLimits,
  ): Awaitable<bigint | number | 'notint' | 'limit' | WriteFailure> {
    const slot = this.#writable(id, now);
    if (typeof slot === 'string') return slot;
    const vars = this.#table.vars[slot]!;
    // An indexed variable takes the general path, which moves the session between index entries.
    if (typeof vars === 'string' && !(this.#varIndex.size > 0 && this.#varIndex.has(name))) {
      const next = incPacked(vars, name, Number(by));
      if (next !== undefined) {
        this.#table.vars[slot] = next;
        return incPackedSum;
      }
    }
    const before = getVar(vars, name);
    const sum = addInt64(before, by);
    if (sum === 'notint') return sum;
    const outcome = this.#setVar(id, slot, name, sum.toString(), limits);
    return outcome === 'ok' ? sum : outcome;
  }

  /** Sets one variable of a writable slot: SET's and INC's path. */
  #setVar(
    id: string,
    slot: number,
    name: string,
    after: string,
    limits: StoreLimits,
  ): 'ok' | 'limit' {
    const t = this.#table;
    const vars = t.vars[slot]!;
    // The value before is needed only to move the session between index entries.
    const indexed = this.#varIndex.size > 0 && this.#varIndex.has(name);
    const before = indexed ? getVar(vars, name) : undefined;
    const next = withVar(vars, name, after, limits.maxVars);
    if (next === undefined) return 'limit';
    t.vars[slot] = next;
    if (indexed) this.#indexVar(id, name, before, after);
    return 'ok';
  }

  setData(
    id: string,
    data: string,
    now: number,
    init: SessionInit,
  ): Awaitable<'updated' | 'created' | 'readonly'> {
    this.#open();
    const slot = this.#writable(id, now);
    if (slot === 'readonly') return slot;
    if (slot === 'nosession') {
      const stale = this.#table.slots.get(id);
      if (stale !== undefined) this.#remove(id, stale);
      this.#insert({ ...init, data }, now);
      return 'created';
    }
    this.#table.data[slot] = data;
    return 'updated';
  }

  update(id: string, patch: SessionPatch, now: number): Awaitable<'ok' | WriteFailure> {
    const slot = this.#writable(id, now);
    if (typeof slot === 'string') return slot;
    const t = this.#table;
    if (patch.user !== undefined && patch.user !== t.user[slot]) {
      this.#indexUser(id, t.user[slot]!, patch.user);
      t.user[slot] = patch.user;
    }
    if (patch.timeout !== undefined) t.timeout[slot] = patch.timeout;
    if (patch.expires !== undefined) t.expires[slot] = patch.expires;
    this.#schedule(slot);
    return 'ok';
  }

  touch(id: string, now: number): Awaitable<boolean> {
    this.#open();
    const slot = this.#table.live(id, now);
    if (slot === undefined) return false;
    if (this.#table.readonly[slot] === 0) this.#table.touched[slot] = now;
    return true;
  }

  destroy(id: string, now: number): Awaitable<boolean> {
    this.#open();
    const slot = this.#table.slots.get(id);
    if (slot === undefined) return false;
    const wasLive = now < this.#table.deadline(slot);
    this.#remove(id, slot);
    return wasLive;
  }

  async regenerate(
    oldId: string,
    newId: string,
    graceMs: number,
    now: number,
  ): Promise<'ok' | 'exists' | WriteFailure> {
    const slot = this.#writable(oldId, now);
    if (typeof slot === 'string') return slot;
    const t = this.#table;
    const taken = t.slots.get(newId);
    if (taken !== undefined) {
      if (now < t.deadline(taken)) return 'exists';
      this.#remove(newId, taken);
    }
    const copy = this.#insert(
      {
        id: newId,
        cls: t.cls[slot]!,
        data: t.data[slot]!,
        user: t.user[slot]!,
        timeout: t.timeout[slot]!,
        expires: t.expires[slot]!,
        vars: toMap(t.vars[slot]!),
      },
      now,
    );
    t.created[copy] = t.created[slot]!;
    const lock = this.#locks.get(oldId);
    if (lock) this.#locks.set(newId, lock);
    this.#locks.delete(oldId);
    if (graceMs > 0) {
      // The old id keeps a frozen copy that in-flight requests may read but never write.
      t.readonly[slot] = 1;
      const graceEnd = now + graceMs;
      if (t.expires[slot] === 0 || t.expires[slot]! > graceEnd) t.expires[slot] = graceEnd;
      this.#schedule(slot);
    } else {
      this.#remove(oldId, slot);
    }
    return 'ok';
  }

  async find(name: string, value: string, now: number, limit = Infinity): Promise<string[]> {
    this.#open();
    const index = this.#varIndex.get(name);
    if (index) return this.#liveOnly(index.get(value) ?? [], now, limit);
    const ids: string[] = [];
    if (limit <= 0) return ids;
    await this.#walkLive(now, (slot) => {
      if (getVar(this.#table.vars[slot]!, name) === value) ids.push(this.#table.slots.idOf(slot)!);
      return ids.length >= limit;
    });
    return ids;
  }

  async listVar(name: string, now: number, limit = Infinity): Promise<Array<[string, string]>> {
    this.#open();
    const pairs: Array<[string, string]> = [];
    const index = this.#varIndex.get(name);
    if (index) {
      for (const [value, ids] of index) {
        for (const id of this.#liveOnly(ids, now, limit - pairs.length)) pairs.push([id, value]);
        if (pairs.length >= limit) break;
      }
      return pairs;
    }
    if (limit <= 0) return pairs;
    await this.#walkLive(now, (slot) => {
      const value = getVar(this.#table.vars[slot]!, name);
      if (value !== undefined) pairs.push([this.#table.slots.idOf(slot)!, value]);
      return pairs.length >= limit;
    });
    return pairs;
  }

  async list(now: number, options: ListOptions): Promise<ListPage> {
    this.#open();
    const wanted = (slot: number) =>
      options.cls === undefined || this.#table.cls[slot] === options.cls;
    if (options.cursor === undefined) {
      const ids: string[] = [];
      const limit = options.limit ?? Infinity;
      if (limit > 0) {
        await this.#walkLive(now, (slot) => {
          if (wanted(slot)) ids.push(this.#table.slots.idOf(slot)!);
          return ids.length >= limit;
        });
      }
      return { cursor: '0', ids };
    }
    this.#closeIdleCursors(now);
    let token = options.cursor;
    let open: OpenCursor | undefined;
    if (token === '0') {
      // A Map iterator (one per shard, in turn) visits every key present from its start to its
      // end exactly once, whatever is added or removed meanwhile: the guarantee SCAN gives.
      open = { ids: this.#table.slots.keys(), usedAt: now };
      token = `m${randomBytes(9).toString('base64url')}`;
      if (this.#cursors.size >= MAX_OPEN_CURSORS)
        this.#cursors.delete(this.#cursors.keys().next().value!);
    } else {
      open = this.#cursors.get(token);
      if (!open) throw new SessiondError('ERR', 'invalid or expired cursor');
      this.#cursors.delete(token);
    }
    const ids: string[] = [];
    const count = options.count ?? DEFAULT_PAGE;
    while (ids.length < count) {
      const next = open.ids.next();
      if (next.done) return { cursor: '0', ids };
      const slot = this.#table.live(next.value, now);
      if (slot !== undefined && wanted(slot)) ids.push(next.value);
    }
    open.usedAt = now;
    this.#cursors.set(token, open);
    return { cursor: token, ids };
  }

  async count(now: number, cls?: string): Promise<number> {
    this.#open();
    // One push at a time: a spread of ~125k or more arguments throws RangeError.
    for (const expired of this.#reap(now, Infinity)) this.#reaped.push(expired);
    if (cls !== undefined) return this.#classCounts.get(cls) ?? 0;
    return this.#table.size;
  }

  lock(id: string, leaseMs: number, now: number): Awaitable<LockAttempt> {
    this.#open();
    if (this.#table.live(id, now) === undefined) return 'nosession';
    const state = this.#locks.get(id) ?? { fence: 0, key: 0, until: 0 };
    if (state.until > now) return { acquired: false, heldUntil: state.until };
    state.fence += 1;
    state.key = state.fence;
    state.until = now + leaseMs;
    this.#locks.set(id, state);
    return { acquired: true, key: state.key, until: state.until };
  }

  unlock(id: string, key: number, now: number): Awaitable<boolean> {
    this.#open();
    const state = this.#locks.get(id);
    if (this.#table.live(id, now) === undefined || !state) return false;
    if (state.key !== key || state.until <= now) return false;
    state.until = 0;
    return true;
  }

  async userSessions(user: string, now: number, limit = Infinity): Promise<string[]> {
    this.#open();
    return this.#liveOnly(this.#userIndex.get(user) ?? [], now, limit);
  }

  async destroyUser(user: string, except: string | null, now: number): Promise<string[]> {
    this.#open();
    const ids = this.#liveOnly(this.#userIndex.get(user) ?? [], now).filter((id) => id !== except);
    for (const id of ids) this.#remove(id, this.#table.slots.get(id)!);
    return ids;
  }

  async sweep(now: number, limit: number): Promise<ExpiredSession[]> {
    this.#open();
    const carried = this.#reaped.splice(0, limit);
    return carried.concat(this.#reap(now, limit - carried.length));
  }

  async empty(now: number): Promise<number> {
    this.#open();
    // Counted and cleared in one turn: EMPTY is atomic, and counting makes no id strings.
    const t = this.#table;
    let live = 0;
    for (let slot = 0; slot < t.slots.end; slot++) {
      if (t.slots.used(slot) && now < t.deadline(slot)) live++;
    }
    this.#table.clear();
    this.#wheel.clear();
    for (const index of this.#varIndex.values()) index.clear();
    this.#userIndex.clear();
    this.#classCounts.clear();
    this.#locks.clear();
    this.#cursors.clear();
    this.#reaped = [];
    return live;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#cursors.clear();
    return;
  }

  #open(): void {
    if (this.#closed) throw new SessiondError('ERR', 'store is closed');
  }

  /** The slot of a live session that may be written, touched; or why it may not. */
  #writable(id: string, now: number): number | WriteFailure {
    this.#open();
    const slot = this.#table.live(id, now);
    if (slot === undefined) return 'nosession';
    if (this.#table.readonly[slot] === 1) return 'readonly';
    this.#touch(slot, now);
    return slot;
  }

  #touch(slot: number, now: number): void {
    const t = this.#table;
    if (t.readonly[slot] === 0 && now - t.touched[slot]! >= TOUCH_RESOLUTION_MS)
      t.touched[slot] = now;
  }

  #insert(init: SessionInit, now: number): number {
    const t = this.#table;
    const slot = t.add(init.id, init.cls, now);
    t.data[slot] = init.data;
    t.timeout[slot] = init.timeout;
    t.expires[slot] = init.expires;
    t.vars[slot] = fromMap(new Map(init.vars));
    for (const [name, value] of init.vars) this.#indexVar(init.id, name, undefined, value);
    if (init.user !== null) {
      t.user[slot] = init.user;
      this.#indexUser(init.id, null, init.user);
    }
    this.#classCounts.set(init.cls, (this.#classCounts.get(init.cls) ?? 0) + 1);
    this.#schedule(slot);
    return slot;
  }

  #remove(id: string, slot: number): void {
    const t = this.#table;
    if (this.#varIndex.size > 0) {
      for (const [name, value] of toMap(t.vars[slot]!)) this.#indexVar(id, name, value, undefined);
    }
    this.#indexUser(id, t.user[slot]!, null);
    const cls = t.cls[slot]!;
    const left = (this.#classCounts.get(cls) ?? 1) - 1;
    if (left > 0) this.#classCounts.set(cls, left);
    else this.#classCounts.delete(cls);
    this.#locks.delete(id);
    t.remove(id, slot);
  }

  /** Puts the slot in the bucket of its deadline unless an earlier or equal one holds it. */
  #schedule(slot: number): void {
    const t = this.#table;
    const deadline = t.deadline(slot);
    if (deadline === Infinity) return;
    const current = t.scheduled[slot]!;
    if (current !== 0 && current * 1000 <= deadline) return;
    t.scheduled[slot] = this.#wheel.schedule(t.slots.idOf(slot)!, deadline);
  }

  /** Removes up to `limit` sessions whose deadline has passed. */
  #reap(now: number, limit: number): ExpiredSession[] {
    const t = this.#table;
    const expired: ExpiredSession[] = [];
    for (let due = this.#wheel.earliestDue(now); due && expired.length < limit;) {
      const notYet: string[] = [];
      while (due.ids.length > 0 && expired.length < limit) {
        const id = due.ids.pop()!;
        const slot = t.slots.get(id);
        if (slot === undefined || t.scheduled[slot] !== due.key) continue; // stale entry
        const deadline = t.deadline(slot);
        if (deadline <= now) {
          expired.push({ id, cls: t.cls[slot]! });
          this.#remove(id, slot);
        } else {
          t.scheduled[slot] = 0;
          if (Math.ceil(deadline / 1000) === due.key) notYet.push(id);
          else this.#schedule(slot);
        }
      }
      for (const id of notYet) t.scheduled[t.slots.get(id)!] = due.key;
      for (const id of notYet) due.ids.push(id);
      if (due.ids.length > 0) break; // the rest of this second's bucket is not due yet
      this.#wheel.dropEarliest();
      due = this.#wheel.earliestDue(now);
    }
    return expired;
  }

  /**
   * Calls `visit` with the slot of every session live at `now`, in slot order, until it answers
   * true; gives the event loop a turn every SCAN_BATCH slots. A slot keeps its session for the
   * session's whole life, so a session live throughout the walk is visited exactly once.
   * @throws SessiondError when the store is closed during the walk
   */
  async #walkLive(now: number, visit: (slot: number) => boolean): Promise<void> {
    const t = this.#table;
    for (let slot = 0, pause = SCAN_BATCH; slot < t.slots.end; slot++) {
      if (slot === pause) {
        await turn();
        this.#open();
        pause += SCAN_BATCH;
      }
      if (t.slots.used(slot) && now < t.deadline(slot) && visit(slot)) return;
    }
  }

  /** The live ones among `ids`, at most `limit` of them. */
  #liveOnly(ids: Iterable<string>, now: number, limit = Infinity): string[] {
    const live: string[] = [];
    for (const id of ids) {
      if (live.length >= limit) break;
      if (this.#table.live(id, now) !== undefined) live.push(id);
    }
    return live;
  }

  #indexVar(id: string, name: string, before: string | undefined, after: string | undefined): void {
    const index = this.#varIndex.get(name);
    if (!index || before === after) return;
    if (before !== undefined) removeFrom(index, before, id);
    if (after !== undefined) addTo(index, after, id);
  }

  #indexUser(id: string, before: string | null, after: string | null): void {
    if (before !== null) removeFrom(this.#userIndex, before, id);
    if (after !== null) addTo(this.#userIndex, after, id);
  }

  #closeIdleCursors(now: number): void {
    for (const [token, open] of this.#cursors) {
      if (now - open.usedAt > CURSOR_IDLE_MS) this.#cursors.delete(token);
    }
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (ids) ids.add(id);
  else index.set(key, new Set([id]));
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key);
  if (ids?.delete(id) && ids.size === 0) index.delete(key);
}
