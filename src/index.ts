/**
 * sessiond: a session server and session library for the web.
 * The engine and its types; stores, server, client and web adapters have their own subpaths.
 */
export * from './core/index.ts';
export { ERROR_CODES, SessiondError, isSessiondError, type ErrorCode } from './errors.ts';
export type * from './store/types.ts';
export { TOUCH_RESOLUTION_MS } from './store/types.ts';
