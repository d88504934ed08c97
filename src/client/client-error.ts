import { ERROR_CODES, SessiondError, type ErrorCode } from '../errors.ts';

/**
 * The codes of failures that happen on the client's side of the wire. They are kept apart from
 * the server's codes (ERROR_CODES): a SessiondError always carries a code word the server sent.
 */
export const CLIENT_ERROR_CODES = [
  /** No reply within `commandTimeoutMs`; the command may still have run on the server. */
  'TIMEOUT',
  /** The server could not be reached, or the connection was lost before the reply. */
  'CONNECTION',
  /** The client was disconnected by `disconnect()`. */
  'CLOSED',
  /** The server answered with a reply of a shape its command cannot have. */
  'PROTOCOL',
] as const;

/** One of the client-side failure codes. */
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

/**
 * A failure of the client or the connection, not an answer of the server: a timeout, a refused
 * or lost connection, a closed client.
 *
 * @example
 * try { await client.get(sid, 'cart') } catch (e) { if (isClientError(e, 'TIMEOUT')) retryLater() }
 */
export class ClientError extends Error {
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClientError';
    this.code = code;
  }
}

/** True when `e` is a ClientError, with the given code if one is named. */
export function isClientError(e: unknown, code?: ClientErrorCode): e is ClientError {
  return e instanceof ClientError && (code === undefined || e.code === code);
}

/**
 * The SessiondError an error reply stands for: the first word is the code (`NOSESSION no such
 * session: abcd…`). A word that is not one of PROTOCOL.md's codes (a newer server's) becomes
 * `ERR` with the whole text, so callers only ever see documented codes.
 */
export function fromErrorReply(text: string): SessiondError {
  const space = text.indexOf(' ');
  const word = space < 0 ? text : text.slice(0, space);
  if ((ERROR_CODES as readonly string[]).includes(word)) {
    return new SessiondError(word as ErrorCode, space < 0 ? '' : text.slice(space + 1));
  }
  return new SessiondError('ERR', text);
}
