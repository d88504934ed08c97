/**
 * The stable error codes of sessiond (PROTOCOL.md, "Replies and errors").
 *
 * A code is never renamed or reused: clients in every language match on the word
 * (the lesson of msession's shifted REQE_* numbers). A test checks each is documented.
 */
export const ERROR_CODES = [
  'ERR',
  'NOSESSION',
  'NOTINT',
  'LOCKED',
  'LIMIT',
  'BADID',
  'NOAUTH',
  'WRONGPASS',
  'NOPLUGIN',
  'DENIED',
] as const;

/** One of the stable error code words. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * An error that every door (RESP, HTTP, the in-process API) reports by its code word.
 *
 * @example
 * try { await engine.get(sid, 'cart') } catch (e) { if (isSessiondError(e, 'NOSESSION')) ... }
 */
export class SessiondError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'SessiondError';
    this.code = code;
  }

  /** The wire form: the code word, a space, the message (as Redis errors are written). */
  toWire(): string {
    return `${this.code} ${this.message}`;
  }
}

/** True when `e` is a SessiondError, with the given code if one is named. */
export function isSessiondError(e: unknown, code?: ErrorCode): e is SessiondError {
  return e instanceof SessiondError && (code === undefined || e.code === code);
}

export const noSession = (id: string): SessiondError =>
  new SessiondError('NOSESSION', `no such session: ${redactId(id)}`);

export const limitError = (limit: string, max: number): SessiondError =>
  new SessiondError('LIMIT', `${limit} exceeds ${max}`);

export const syntaxError = (message: string): SessiondError => new SessiondError('ERR', message);

/**
 * A session id shortened for messages and logs: enough to tell two apart, never enough to use.
 * Defends against session theft through logs and error replies.
 */
export function redactId(id: string): string {
  return id.length <= 6 ? '…' : `${id.slice(0, 4)}…`;
}
