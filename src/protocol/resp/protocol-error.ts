import { SessiondError } from '../../errors.ts';

/**
 * Which rule a client's bytes broke; stable, for metrics and tests (the message is for people).
 *
 * - `multibulk-length`: a `*` count that is not a canonical integer, is negative (other than
 *   `*-1`), is over `maxArgs`, or runs past 20 characters
 * - `bulk-prefix`: an argument of a multibulk request that does not start with `$`
 * - `bulk-length`: a `$` length that is not a canonical integer, is negative, is over
 *   `maxBulkLength`, or runs past 20 characters
 * - `bulk-terminator`: a bulk argument not followed by CRLF (its length was wrong)
 * - `query-buffer`: one multibulk request larger than `maxQueryBuffer`
 * - `inline-length`: an inline line longer than `maxInlineLength`
 * - `inline-quotes`: an inline line with unbalanced quotes
 * - `inline-args`: an inline line with more than `maxArgs` words
 * - `http`: an inline line that starts an HTTP request (`POST`, `Host:`)
 */
export type ProtocolErrorReason =
  | 'multibulk-length'
  | 'bulk-prefix'
  | 'bulk-length'
  | 'bulk-terminator'
  | 'query-buffer'
  | 'inline-length'
  | 'inline-quotes'
  | 'inline-args'
  | 'http';

/**
 * Bytes from a client that are not a request: the server replies with it and closes the
 * connection, as Redis does. Its code is `ERR` and its message begins "Protocol error: ", so a
 * client sees exactly what Redis would send (`-ERR Protocol error: invalid bulk length`).
 *
 * @example
 * const got = decoder.next();
 * if (got instanceof ProtocolError) { socket.end(encodeReply(got, 2)); }
 */
export class ProtocolError extends SessiondError {
  /** The rule that was broken. */
  readonly reason: ProtocolErrorReason;

  constructor(reason: ProtocolErrorReason, detail: string) {
    super('ERR', `Protocol error: ${detail}`);
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}
