/**
 * The few operations the web layer needs from sessiond, whether the engine runs in this process
 * (`engineBackend`) or behind a server (`clientBackend`). Every string here is Unicode; each
 * implementation converts to what its side speaks. Expected outcomes are values (a missing
 * session is `null` or `'gone'`); only real failures throw.
 */

import type { Awaitable } from '../store/types.ts';

/** A session as the web layer loads it. */
export interface StoredSession {
  /** Variables as stored: the web layer keeps JSON text, one value per variable. */
  vars: Map<string, string>;
  /** The unstructured data blob (msession data, eZ's data column); '' when never set. */
  data: string;
  /** The user id (eZ's user_id), indexed by the store; null when none. */
  user: string | null;
  /** The session's class, when the backend can tell (the engine can; the wire protocol cannot). */
  cls?: string;
  /** A read-only copy left behind by `regenerate` with grace, when the backend can tell. */
  readonly?: boolean;
}

/** How a new session starts. */
export interface NewSession {
  cls: string;
  /** Idle timeout in seconds; 0 never idle-expires. */
  timeout: number;
  /** Absolute lifetime in seconds from now; 0 for none. */
  lifetime: number;
  /** The initial data blob. */
  data?: string;
}

/** What one write changes; absent fields are left alone. */
export interface SessionChanges {
  set?: ReadonlyArray<readonly [string, string]>;
  unset?: readonly string[];
  data?: string;
  /** null clears the user. */
  user?: string | null;
  /** A new idle timeout in seconds. */
  timeout?: number;
}

/**
 * Why a write did not happen: the session is `gone` (destroyed or expired meanwhile, and never
 * created again by the write), or it is a `readonly` grace copy left by `regenerate`.
 */
export type WriteOutcome = 'ok' | 'gone' | 'readonly';

/** What LOCK gave: the key to unlock with, or why not. */
export type LockOutcome = number | 'locked' | 'gone';

/**
 * The operations of the web layer, implemented over an in-process Engine or a SessiondClient.
 * A third implementation (a test double, another transport) only has to keep these contracts.
 */
export interface SessionBackend {
  /** "engine" or "client". */
  readonly kind: string;
  /** A new unguessable id; creates nothing. */
  newId(): string;
  /**
   * The whole live session, recording the access (throttled by the store), or null.
   * @throws BADID
   */
  load(id: string): Promise<StoredSession | null>;
  /**
   * {@link load}, answering at once when the backend can (an engine over the memory store):
   * the web layer then loads a request's session without a promise. Errors may be thrown at once.
   */
  loadImmediate?(id: string): Awaitable<StoredSession | null>;
  /**
   * Creates a session under a caller-chosen id.
   * @returns false when a live session already has the id (nothing is changed then)
   * @throws BADID, LIMIT, DENIED
   */
  create(id: string, init: NewSession): Promise<boolean>;
  /**
   * Applies changes to an existing session. Never creates one: a destroyed session stays
   * destroyed.
   * @throws LIMIT, DENIED (a pre hook's veto)
   */
  write(id: string, changes: SessionChanges): Promise<WriteOutcome>;
  /**
   * {@link write}, answering at once when the backend can (an engine over the memory store,
   * variables only). Errors may be thrown at once.
   */
  writeImmediate?(id: string, changes: SessionChanges): Awaitable<WriteOutcome>;
  /** Records an access now; false when there is no such session. */
  touch(id: string): Promise<boolean>;
  /** Removes the session; false when none was live. */
  destroy(id: string): Promise<boolean>;
  /**
   * Moves the session to a new id; the old one stays a read-only copy for `graceSeconds`.
   * @returns the new id, or null when the session is gone
   * @throws LIMIT, DENIED
   */
  regenerate(id: string, graceSeconds: number): Promise<string | null>;
  /**
   * Takes the session's exclusive lock for `leaseMs`, waiting up to `waitMs` for the holder.
   * @throws LIMIT (lease or wait over the engine's maximum)
   */
  lock(id: string, leaseMs: number, waitMs: number): Promise<LockOutcome>;
  /** Releases a lock taken with `key`; false when it was no longer held with it. */
  unlock(id: string, key: number): Promise<boolean>;
  /** Ids of the user's live sessions. */
  userSessions(user: string): Promise<string[]>;
  /** Destroys the user's sessions but `except`; how many. */
  destroyUser(user: string, except: string | null): Promise<number>;
  /** Ids of the live sessions of a class. @throws LIMIT past the server's maxResultIds */
  list(cls: string): Promise<string[]>;
  /** The same ids a page at a time (LIST CURSOR), however many there are. */
  pages(cls: string): AsyncIterable<string[]>;
  /** Live sessions, of one class if given. */
  count(cls?: string): Promise<number>;
  /** Removes expired sessions now; how many. @throws DENIED */
  gc(): Promise<number>;
  /** Removes every session of every class (eZSessionEmpty); how many. @throws DENIED */
  empty(): Promise<number>;
}

/**
 * Whether a DENIED error is the engine refusing a write to a grace copy (rather than a pre
 * hook's veto). PROTOCOL.md gives both the one code, so the message tells them apart.
 */
export function isReadonlyRefusal(error: { code: string; message: string }): boolean {
  return error.code === 'DENIED' && error.message.includes('read-only copy');
}

/** Every page of a LIST CURSOR walk, from `page(cursor)`, until the cursor comes back "0". */
export async function* cursorPages(
  page: (cursor: string) => Promise<{ cursor: string; ids: string[] }>,
): AsyncGenerator<string[], void> {
  let cursor = '0';
  do {
    const next = await page(cursor);
    yield next.ids;
    cursor = next.cursor;
  } while (cursor !== '0');
}
