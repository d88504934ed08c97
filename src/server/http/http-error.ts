import { SessiondError, type ErrorCode } from '../../errors.ts';

/**
 * The HTTP status of each error code. A `Record` over every code, so a code added to errors.ts
 * does not type-check until it has a status here.
 */
export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze({
  ERR: 400,
  NOTINT: 400,
  BADID: 400,
  LIMIT: 413,
  NOSESSION: 404,
  LOCKED: 423,
  NOAUTH: 401,
  WRONGPASS: 401,
  NOPLUGIN: 404,
  DENIED: 403,
});

/**
 * An error of the HTTP door whose status is not the one its code maps to (an unknown route is
 * 404 but ERR, a wrong method 405), with any headers the status calls for (`Allow`).
 */
export class HttpError extends SessiondError {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
    this.name = 'HttpError';
    this.status = status;
    this.headers = headers;
  }
}

/** The HTTP status an error is answered with. */
export function statusOf(error: SessiondError): number {
  return error instanceof HttpError ? error.status : STATUS_BY_CODE[error.code];
}
