/**
 * sessiond/client: the typed client of a sessiond server, over its RESP port.
 */
export {
  SessiondClient,
  type ConnectOptions,
  type CreateOptions,
  type EventListener,
  type ListPage,
  type Variables,
} from './client.ts';
export {
  CLIENT_ERROR_CODES,
  ClientError,
  isClientError,
  type ClientErrorCode,
} from './client-error.ts';
export { ERROR_CODES, SessiondError, isSessiondError, type ErrorCode } from '../errors.ts';
export type { CtlQuery } from '../core/engine.ts';
