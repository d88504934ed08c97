import type { Engine } from '../core/engine.ts';
import { isSessiondError } from '../errors.ts';
import {
  cursorPages,
  isReadonlyRefusal,
  type LockOutcome,
  type NewSession,
  type SessionBackend,
  type SessionChanges,
  type StoredSession,
  type WriteOutcome,
} from './backend.ts';
import type { Awaitable, SessionRecord } from '../store/types.ts';
import { fromBytes, toBytes } from './byte-strings.ts';

/**
 * The web layer's backend over an in-process Engine: sessions live in this process's store
 * (memory, SQLite, ...), and every operation still goes through the engine's rules and hooks.
 *
 * @example
 * const sessions = createSessions({ backend: engineBackend(engine) }); // or { engine }
 */
export function engineBackend(engine: Engine): SessionBackend {
  return new EngineBackend(engine);
}

class EngineBackend implements SessionBackend {
  readonly kind = 'engine';
  #engine: Engine;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  newId(): string {
    return this.#engine.newId();
  }

  async load(id: string): Promise<StoredSession | null> {
    return this.loadImmediate(id);
  }

  loadImmediate(id: string): Awaitable<StoredSession | null> {
    // The immediate forms: over the memory store a request's load and save take no promise hop.
    const loaded = this.#engine.loadImmediate(id);
    return loaded instanceof Promise ? loaded.then(stored) : stored(loaded);
  }

  async create(id: string, init: NewSession): Promise<boolean> {
    const created = await this.#engine.create(id, {
      cls: toBytes(init.cls),
      timeout: init.timeout,
      ...(init.data !== undefined && { data: toBytes(init.data) }),
    });
    if (created && init.lifetime > 0) await this.#engine.expire(id, init.lifetime);
    return created;
  }

  writeImmediate(id: string, changes: SessionChanges): Awaitable<WriteOutcome> {
    const { set } = changes;
    const onlySet =
      set?.length &&
      !changes.unset?.length &&
      changes.user === undefined &&
      changes.timeout === undefined &&
      changes.data === undefined;
    if (!onlySet) return this.write(id, changes);
    // The request's usual write, variables only: over the memory store it answers at once.
    let written;
    try {
      written = this.#engine.setManyImmediate(
        id,
        set.map(([name, value]) => [toBytes(name), toBytes(value)] as const),
      );
    } catch (error) {
      return refusal(error);
    }
    return written instanceof Promise ? written.then(() => 'ok' as const, refusal) : 'ok';
  }

  async write(id: string, changes: SessionChanges): Promise<WriteOutcome> {
    const engine = this.#engine;
    try {
      // Variables first: their NOSESSION stops the write before SETDATA could create anything.
      if (changes.unset?.length) await engine.unset(id, changes.unset.map(toBytes));
      if (changes.set?.length) {
        const written = engine.setManyImmediate(
          id,
          changes.set.map(([name, value]) => [toBytes(name), toBytes(value)] as const),
        );
        // Awaited only when pending: a settled write costs no turn of the microtask queue.
        if (written instanceof Promise) await written;
      }
      if (changes.user !== undefined) {
        await engine.setUser(id, changes.user === null ? null : toBytes(changes.user));
      }
      if (changes.timeout !== undefined) await engine.timeout(id, changes.timeout);
      if (changes.data !== undefined) {
        // SETDATA creates a missing session; one that was destroyed meanwhile must stay
        // destroyed (the logout race), so a creation here is undone at once.
        if (await engine.setData(id, toBytes(changes.data))) {
          await engine.destroy(id);
          return 'gone';
        }
      }
      return 'ok';
    } catch (error) {
      return refusal(error);
    }
  }

  touch(id: string): Promise<boolean> {
    return this.#engine.touch(id);
  }

  destroy(id: string): Promise<boolean> {
    return this.#engine.destroy(id);
  }

  async regenerate(id: string, graceSeconds: number): Promise<string | null> {
    try {
      return await this.#engine.regenerate(id, { graceSeconds });
    } catch (error) {
      if (isSessiondError(error, 'NOSESSION')) return null;
      throw error;
    }
  }

  async lock(id: string, leaseMs: number, waitMs: number): Promise<LockOutcome> {
    try {
      const result = await this.#engine.lock(id, { leaseMs, waitMs });
      return result.acquired ? result.key : 'locked';
    } catch (error) {
      if (isSessiondError(error, 'NOSESSION')) return 'gone';
      throw error;
    }
  }

  unlock(id: string, key: number): Promise<boolean> {
    return this.#engine.unlock(id, key);
  }

  async userSessions(user: string): Promise<string[]> {
    return this.#engine.userSessions(toBytes(user));
  }

  destroyUser(user: string, except: string | null): Promise<number> {
    return this.#engine.destroyUser(toBytes(user), except);
  }

  list(cls: string): Promise<string[]> {
    return this.#engine.list(toBytes(cls));
  }

  pages(cls: string): AsyncIterable<string[]> {
    return cursorPages((cursor) => this.#engine.scan(cursor, { cls: toBytes(cls) }));
  }

  count(cls?: string): Promise<number> {
    return this.#engine.count(cls === undefined ? undefined : toBytes(cls));
  }

  gc(): Promise<number> {
    return this.#engine.gc();
  }

  empty(): Promise<number> {
    return this.#engine.empty();
  }
}

/** A session as the engine keeps it (byte strings), as the web layer loads it; null for none. */
function stored(record: SessionRecord | null): StoredSession | null {
  if (!record) return null;
  const vars = new Map<string, string>();
  for (const [name, value] of record.vars) vars.set(fromBytes(name), fromBytes(value));
  return {
    vars,
    data: fromBytes(record.data),
    user: record.user === null ? null : fromBytes(record.user),
    cls: fromBytes(record.cls),
    readonly: record.readonly,
  };
}

/** A write's refusal as its outcome: the session is gone, or a read-only grace copy. */
function refusal(error: unknown): WriteOutcome {
  if (isSessiondError(error, 'NOSESSION')) return 'gone';
  if (isSessiondError(error) && isReadonlyRefusal(error)) return 'readonly';
  throw error;
}
