/**
 * sessiond/web: the framework-agnostic web layer (PHPLib's Session, eZ's session handler), over
 * an in-process Engine or a remote server. Adapters: ./node, ./express, and
 * ./express-session-store for existing express-session apps.
 */
export { createSessions, SessionManager, type BeginOptions } from './manager.ts';
export { SessionTransaction } from './transaction.ts';
export { Session, type SessionData, type SessionValue } from './session.ts';
export type {
  CachePolicy,
  Carrier,
  Concurrency,
  CookieOptions,
  GcOptions,
  RejectedIdReason,
  ResolvedOptions,
  SessionOptions,
} from './options.ts';
export type { HeaderSink, RequestLike } from './request.ts';
export type {
  LockOutcome,
  NewSession,
  SessionBackend,
  SessionChanges,
  StoredSession,
  WriteOutcome,
} from './backend.ts';
export { engineBackend } from './engine-backend.ts';
export { clientBackend } from './client-backend.ts';
export { Signer } from './signing.ts';
export { readCookies, serializeCookie, type CookieAttributes } from './cookies.ts';
export { encodeQueryComponent, encodeUrl, escapeHtml } from './escape.ts';
