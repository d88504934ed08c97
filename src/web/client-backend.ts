import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessiondClient } from '../client/client.ts';
import { randomAlphanumeric } from '../core/ids.ts';
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

/** Ids made here match the engine's: 32 alphanumerics carry 190 bits. */
const ID_LENGTH = 32;
/** Longest pause between LOCK attempts while another request holds the lock. */
const MAX_LOCK_POLL_MS = 20;

/**
 * The web layer's backend over a remote sessiond server, through its typed client. Commands of
 * one operation are sent in the same tick, so the client pipelines them into one round trip.
 * The caller owns the client (connects and disconnects it).
 *
 * @example
 * const client = await SessiondClient.connect({ host: 'sessions.internal', password });
 * const sessions = createSessions({ backend: clientBackend(client) }); // or { client }
 */
export function clientBackend(client: SessiondClient): SessionBackend {
  return new ClientBackend(client);
}

class ClientBackend implements SessionBackend {
  readonly kind = 'client';
  #client: SessiondClient;

  constructor(client: SessiondClient) {
    this.#client = client;
  }

  newId(): string {
    return randomAlphanumeric(ID_LENGTH);
  }

  async load(id: string): Promise<StoredSession | null> {
    const client = this.#client;
    // One round trip: the three replies come back on one pipeline. GETALL records the access.
    const [vars, data, user] = await Promise.allSettled([
      client.getArray(id),
      client.getData(id),
      client.getUser(id),
    ]);
    if (vars.status === 'rejected') return missing(vars.reason);
    if (data.status === 'rejected') return missing(data.reason);
    if (user.status === 'rejected') return missing(user.reason);
    return { vars: vars.value, data: data.value, user: user.value };
  }

  async create(id: string, init: NewSession): Promise<boolean> {
    const created = await this.#client.create(id, {
      cls: init.cls,
      timeout: init.timeout,
      ...(init.data !== undefined && { data: init.data }),
    });
    if (created && init.lifetime > 0) await this.#client.expire(id, init.lifetime);
    return created;
  }

  async write(id: string, changes: SessionChanges): Promise<WriteOutcome> {
    const client = this.#client;
    const calls: Array<Promise<unknown>> = [];
    // SETDATA creates a missing session, so a data write is preceded, on the same pipeline, by a
    // command that answers NOSESSION for a destroyed one: seeing it, the creation is undone.
    if (changes.data !== undefined) calls.push(client.timeout(id));
    if (changes.unset?.length) calls.push(client.unset(id, ...changes.unset));
    if (changes.set?.length) calls.push(client.setArray(id, changes.set));
    if (changes.user !== undefined) calls.push(client.setUser(id, changes.user));
    if (changes.timeout !== undefined) calls.push(client.timeout(id, changes.timeout));
    if (changes.data !== undefined) calls.push(client.setData(id, changes.data));
    const outcomes = await Promise.allSettled(calls);
    const failures: unknown[] = [];
    for (const outcome of outcomes)
      if (outcome.status === 'rejected') failures.push(outcome.reason);
    if (failures.some((e) => isSessiondError(e, 'NOSESSION'))) {
      if (changes.data !== undefined) await client.destroy(id);
      return 'gone';
    }
    if (failures.some((e) => isSessiondError(e) && isReadonlyRefusal(e))) return 'readonly';
    if (failures.length > 0) throw failures[0];
    return 'ok';
  }

  touch(id: string): Promise<boolean> {
    return this.#client.touch(id);
  }

  destroy(id: string): Promise<boolean> {
    return this.#client.destroy(id);
  }

  async regenerate(id: string, graceSeconds: number): Promise<string | null> {
    try {
      return await this.#client.regenerate(id, { graceSeconds });
    } catch (error) {
      if (isSessiondError(error, 'NOSESSION')) return null;
      throw error;
    }
  }

  /**
   * Polls with WAIT 0 rather than asking the server to wait: the server answers one connection's
   * commands in order, so a LOCK that waits on the shared connection would hold up every other
   * request's commands, the holder's UNLOCK among them.
   */
  async lock(id: string, leaseMs: number, waitMs: number): Promise<LockOutcome> {
    const giveUpAt = performance.now() + waitMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#client.lock(id, { leaseMs });
      } catch (error) {
        if (isSessiondError(error, 'NOSESSION')) return 'gone';
        if (!isSessiondError(error, 'LOCKED')) throw error;
      }
      const left = giveUpAt - performance.now();
      if (left <= 0) return 'locked';
      // Jitter keeps many waiters from retrying in step.
      const pause = Math.min(MAX_LOCK_POLL_MS, 2 ** attempt) * (0.5 + Math.random() / 2);
      await sleep(Math.min(left, pause));
    }
  }

  unlock(id: string, key: number): Promise<boolean> {
    return this.#client.unlock(id, key);
  }

  userSessions(user: string): Promise<string[]> {
    return this.#client.userSessions(user);
  }

  destroyUser(user: string, except: string | null): Promise<number> {
    return this.#client.destroyUser(user, except === null ? {} : { except });
  }

  list(cls: string): Promise<string[]> {
    return this.#client.list({ cls });
  }

  pages(cls: string): AsyncIterable<string[]> {
    return cursorPages((cursor) => this.#client.list({ cls, cursor }));
  }

  count(cls?: string): Promise<number> {
    return this.#client.count(cls);
  }

  gc(): Promise<number> {
    return this.#client.gc();
  }

  empty(): Promise<number> {
    return this.#client.empty();
  }
}

/** A session that vanished between the pipelined replies is as missing as one never there. */
function missing(reason: unknown): null {
  if (isSessiondError(reason, 'NOSESSION')) return null;
  throw reason;
}
