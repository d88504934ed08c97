import type { SessiondClient } from '../client/client.ts';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Engine } from '../core/engine.ts';
import type { SessionBackend } from './backend.ts';
import { clientBackend } from './client-backend.ts';
import { isCookieDomain, isCookieName, isCookiePath } from './cookies.ts';
import { engineBackend } from './engine-backend.ts';
import { Signer } from './signing.ts';

/** Where the session id travels. */
export type Carrier = 'cookie' | 'query' | 'header' | 'cookie-or-query';

/** How concurrent requests of one session are handled, per route. */
export type Concurrency = 'none' | 'lock' | 'readonly';

/** PHPLib's allowcache: which Cache-Control a response gets unless the app set its own. */
export type CachePolicy = 'no' | 'private' | 'public' | 'passive';

/** Cookie attributes. */
export interface CookieOptions {
  /** Default true: scripts cannot read the id (defends against theft by XSS). */
  httpOnly?: boolean;
  /** Default 'lax'. 'none' needs `secure`. */
  sameSite?: 'lax' | 'strict' | 'none';
  /** 'auto' (default): on when the request is HTTPS or a trusted proxy says it was. */
  secure?: boolean | 'auto';
  /** Default '/'. */
  path?: string;
  domain?: string;
  /** Seconds; 0 (default) is a browser-session cookie. Above 0 the cookie is re-sent each request. */
  maxAge?: number;
  /** Name the cookie `__Host-<name>`: Secure, Path=/ and no Domain, so no subdomain can set it. */
  hostPrefix?: boolean;
}

/** Garbage collection of expired sessions. */
export type GcOptions =
  | { probability: number }
  | { intervalMs: number }
  /** Off: a server's sweeper collects (expired sessions are never readable either way). */
  | false;

/**
 * Why an id a request carried was not used: `malformed` (not 1..255 RFC 6265 cookie-octets, or
 * longer than the backend takes), `bad-signature` (with `keys`: unsigned, or signed by no key),
 * `unknown` (well formed and signed, but no live session of this class has it: expired,
 * destroyed, or made up; reported in strict mode only, where such an id is dropped).
 */
export type RejectedIdReason = 'malformed' | 'bad-signature' | 'unknown';

/** Options of `createSessions`. Exactly one of `engine`, `client` or `backend` is required. */
export interface SessionOptions {
  /** Sessions in this process, through an Engine (embedded mode). */
  engine?: Engine;
  /** Sessions on a sessiond server, through its client (remote mode). */
  client?: SessiondClient;
  /** Any other SessionBackend. */
  backend?: SessionBackend;
  /** Cookie and query parameter name (PHPLib's classname); default 'sessiond'. */
  name?: string;
  /** The sessions' class in the store; default `name`. Loads of another class are refused. */
  className?: string;
  /** Default 'cookie'. */
  carrier?: Carrier;
  /** The request and response header of the 'header' carrier; default 'x-session-id'. */
  header?: string;
  /** Never adopt an id the store does not know (default true; false is PHPLib's behaviour). */
  strict?: boolean;
  cookie?: CookieOptions;
  /** HMAC-SHA256 keys of 32 bytes or more: the first signs ids, any verifies. */
  keys?: ReadonlyArray<string | Buffer>;
  /** Whether to believe X-Forwarded-Proto: true, the proxies' addresses, or a test. Default false. */
  trustProxy?: boolean | readonly string[] | ((address: string) => boolean);
  /** The public origin (`https://example.com`) for absolute URLs; else URLs are relative. */
  baseUrl?: string;
  /** Host header values (`example.com`, `example.com:8443`) trusted to build absolute URLs. */
  allowedHosts?: readonly string[];
  /** Default 'no' (Cache-Control: no-store). */
  cache?: CachePolicy;
  /** Seconds, for 'private' and 'public'; default 1440 minutes as PHPLib's allowcache_expire. */
  cacheMaxAge?: number;
  /** Default `{ probability: 0.01 }` in embedded mode, `false` in remote mode (the server sweeps). */
  gc?: GcOptions;
  /** Idle timeout in seconds; default 1800; 0 never idle-expires. */
  idleTimeout?: number;
  /** Absolute lifetime in seconds from creation, kept across regenerate; default 0 (none). */
  absoluteTimeout?: number;
  /** Default 'none'; each request may override. */
  concurrency?: Concurrency;
  /** For 'lock': the lease (default 30000 ms) and how long to wait for it (default 10000 ms). */
  lock?: { leaseMs?: number; waitMs?: number };
  /** Where errors of background work (gc, unlock) go; they never carry a session id. */
  onError?: (error: unknown) => void;
  /**
   * Told why each id a request carried was not used, for attack detection (OWASP): a rising
   * rate of `bad-signature` or `unknown` is someone guessing or tampering. Never given the id
   * (which would put live ids into the app's logs). Default: nothing. What it throws goes to
   * `onError`; the request goes on.
   * @example
   * onRejectedId: (reason) => rejectedIds.inc({ reason })
   */
  onRejectedId?: (reason: RejectedIdReason) => void;
  /**
   * Renewal timeout in seconds (OWASP): once the session's id is this old, the next request
   * that can write moves the session to a new id (`regenerate` with `renewGrace`) and sends
   * it, whatever the activity. Default 0: off. The id's age counts from when it was issued
   * (creation or the last regenerate), kept in the session's reserved variable
   * `sessiond:idIssued` (unix seconds): the store's creation time cannot serve, because
   * REGENERATE keeps it. A session without that variable (made before the option was on, or
   * by another client) counts as due. Read-only routes never renew.
   * @throws TypeError with a URL carrier (`query`, `cookie-or-query`): links already in the
   * page would carry the old id
   */
  renewAfter?: number;
  /**
   * Seconds the old id stays a read-only copy after a renewal, so requests already in flight
   * with it finish; default 60. At least 1, and at most the engine's `maxGraceSeconds`
   * (300 by default).
   */
  renewGrace?: number;
  /**
   * Regenerate the id (no grace) at save when `session.userId` changes to another value:
   * login, logout or a switch of user then always gets a new id, even when the app forgets
   * `regenerate()` (defends against session fixation). Default false. Not when the id was
   * already replaced in the same request. Set `userId` before the response starts: an id
   * changed later cannot reach the client.
   * @throws TypeError with a URL carrier, as `renewAfter`
   */
  regenerateOnUserChange?: boolean;
  /** Where the web layer reads the time (for `renewAfter`); default the system clock. */
  clock?: Clock;
  /** The random source of the gc draw; tests pass `() => 0` to make it certain. */
  random?: () => number;
}

/** Options after defaults and checks. */
export interface ResolvedOptions {
  backend: SessionBackend;
  name: string;
  cookieName: string;
  className: string;
  carrier: Carrier;
  header: string;
  strict: boolean;
  cookie: {
    httpOnly: boolean;
    sameSite: 'Lax' | 'Strict' | 'None';
    secure: boolean | 'auto';
    path: string;
    domain: string | undefined;
    maxAge: number;
  };
  signer: Signer;
  trustProxy: (address: string) => boolean;
  baseOrigin: string | null;
  allowedHosts: ReadonlySet<string>;
  cache: CachePolicy;
  cacheMaxAge: number;
  gc: GcOptions;
  idleTimeout: number;
  absoluteTimeout: number;
  concurrency: Concurrency;
  leaseMs: number;
  waitMs: number;
  onError: (error: unknown) => void;
  onRejectedId: (reason: RejectedIdReason) => void;
  renewAfter: number;
  renewGrace: number;
  regenerateOnUserChange: boolean;
  clock: Clock;
  random: () => number;
}

const CONCURRENCY: readonly Concurrency[] = ['none', 'lock', 'readonly'];
const CARRIERS: readonly Carrier[] = ['cookie', 'query', 'header', 'cookie-or-query'];
const CACHE: readonly CachePolicy[] = ['no', 'private', 'public', 'passive'];
const SAME_SITE = { lax: 'Lax', strict: 'Strict', none: 'None' } as const;

/**
 * Applies defaults and checks every option, so a mistake fails at startup, not on a request.
 * @throws TypeError or RangeError naming the option
 */
export function resolveOptions(options: SessionOptions): ResolvedOptions {
  const name = options.name ?? 'sessiond';
  if (!isCookieName(name)) throw new TypeError('name must be an RFC 7230 token');
  const cookie = options.cookie ?? {};
  const hostPrefix = cookie.hostPrefix ?? false;
  const path = cookie.path ?? '/';
  if (!isCookiePath(path)) throw new TypeError('cookie.path must be a path without ";" or CTLs');
  if (cookie.domain !== undefined && !isCookieDomain(cookie.domain)) {
    throw new TypeError('cookie.domain is not a valid domain');
  }
  if (hostPrefix && (cookie.secure === false || cookie.domain !== undefined || path !== '/')) {
    throw new TypeError('cookie.hostPrefix needs secure, path "/" and no domain (RFC 6265bis)');
  }
  // Lax by default: defends against cross-site requests that ride on the cookie (CSRF).
  const sameSite = SAME_SITE[cookie.sameSite ?? 'lax'];
  if (sameSite === undefined) throw new TypeError('cookie.sameSite must be lax, strict or none');
  if (sameSite === 'None' && cookie.secure !== true) {
    throw new TypeError('cookie.sameSite "none" needs cookie.secure true (browsers refuse it)');
  }
  const header = (options.header ?? 'x-session-id').toLowerCase();
  if (!isCookieName(header)) throw new TypeError('header must be an RFC 7230 token');
  const carrier = oneOf('carrier', options.carrier ?? 'cookie', CARRIERS);
  const renewAfter = seconds('renewAfter', options.renewAfter ?? 0);
  const regenerateOnUserChange = flag('regenerateOnUserChange', options.regenerateOnUserChange);
  if ((renewAfter > 0 || regenerateOnUserChange) && carrier !== 'cookie' && carrier !== 'header') {
    // Links already written into the page would carry the replaced id: its owner would land on
    // a read-only or vanished session on the next click.
    throw new TypeError('renewAfter and regenerateOnUserChange need the cookie or header carrier');
  }
  const backend = chooseBackend(options);
  return {
    backend,
    name,
    cookieName: hostPrefix ? `__Host-${name}` : name,
    className: options.className ?? name,
    carrier,
    header,
    strict: options.strict ?? true,
    cookie: {
      httpOnly: cookie.httpOnly ?? true,
      sameSite,
      secure: hostPrefix ? true : (cookie.secure ?? 'auto'),
      path,
      domain: cookie.domain,
      maxAge: seconds('cookie.maxAge', cookie.maxAge ?? 0),
    },
    signer: new Signer(options.keys ?? []),
    trustProxy: trustFunction(options.trustProxy ?? false),
    baseOrigin: options.baseUrl === undefined ? null : originOf(options.baseUrl),
    allowedHosts: new Set((options.allowedHosts ?? []).map((host) => host.toLowerCase())),
    cache: oneOf('cache', options.cache ?? 'no', CACHE),
    cacheMaxAge: seconds('cacheMaxAge', options.cacheMaxAge ?? 1440 * 60),
    gc: checkGc(options.gc ?? (backend.kind === 'engine' ? { probability: 0.01 } : false)),
    idleTimeout: seconds('idleTimeout', options.idleTimeout ?? 1800),
    absoluteTimeout: seconds('absoluteTimeout', options.absoluteTimeout ?? 0),
    concurrency: oneOf('concurrency', options.concurrency ?? 'none', CONCURRENCY),
    leaseMs: positive('lock.leaseMs', options.lock?.leaseMs ?? 30_000),
    waitMs: seconds('lock.waitMs', options.lock?.waitMs ?? 10_000),
    onError: options.onError ?? ((error: unknown) => console.error('sessiond web:', error)),
    onRejectedId: callback('onRejectedId', options.onRejectedId ?? (() => undefined)),
    renewAfter,
    renewGrace: renewGrace(options),
    regenerateOnUserChange,
    clock: checkClock(options.clock ?? systemClock),
    random: options.random ?? Math.random,
  };
}

/** @throws TypeError unless `value` is one of `allowed` */
export function oneOf<T extends string>(option: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value))
    throw new TypeError(`${option} must be one of ${allowed.join(', ')}`);
  return value;
}

/**
 * The backend the options name: exactly one of `engine`, `client` or `backend`.
 * @throws TypeError when none or several are given
 */
export function chooseBackend(
  options: Pick<SessionOptions, 'engine' | 'client' | 'backend'>,
): SessionBackend {
  const given = [options.engine, options.client, options.backend].filter((x) => x !== undefined);
  if (given.length !== 1) throw new TypeError('give exactly one of engine, client or backend');
  if (options.engine) return engineBackend(options.engine);
  if (options.client) return clientBackend(options.client);
  return options.backend!;
}

function seconds(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${option} must be a non-negative integer`);
  }
  return value;
}

function positive(option: string, value: number): number {
  if (seconds(option, value) === 0) throw new RangeError(`${option} must be positive`);
  return value;
}

function callback<T>(option: string, value: T): T {
  if (typeof value !== 'function') throw new TypeError(`${option} must be a function`);
  return value;
}

function flag(option: string, value: boolean | undefined): boolean {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new TypeError(`${option} must be true or false`);
  }
  return value ?? false;
}

function checkClock(clock: Clock): Clock {
  if (typeof clock?.now !== 'function') throw new TypeError('clock must have a now() method');
  return clock;
}

function renewGrace(options: SessionOptions): number {
  const grace = positive('renewGrace', options.renewGrace ?? 60);
  // An embedded engine's limit is known now; a server's shows at the first renewal (onError).
  const max = options.engine?.limits.maxGraceSeconds;
  if (max !== undefined && grace > max) {
    throw new RangeError(`renewGrace must not exceed the engine's maxGraceSeconds (${max})`);
  }
  return grace;
}

function checkGc(gc: GcOptions): GcOptions {
  if (gc === false) return gc;
  if ('probability' in gc) {
    if (!(gc.probability >= 0 && gc.probability <= 1)) {
      throw new RangeError('gc.probability must be between 0 and 1');
    }
  } else {
    positive('gc.intervalMs', gc.intervalMs);
  }
  return gc;
}

function originOf(baseUrl: string): string {
  const url = URL.parse(baseUrl);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new TypeError('baseUrl must be an http or https URL');
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    throw new TypeError('baseUrl must be an origin only (https://example.com), without a path');
  }
  return url.origin;
}

function trustFunction(
  trust: boolean | readonly string[] | ((address: string) => boolean),
): (address: string) => boolean {
  if (typeof trust === 'function') return trust;
  if (typeof trust === 'boolean') return () => trust;
  const addresses = new Set(trust.map(plainAddress));
  return (address) => addresses.has(plainAddress(address));
}

/** An IPv4 peer appears as `::ffff:a.b.c.d` on a dual-stack socket; both forms are one address. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
