import { plainAddress, type ResolvedOptions } from './options.ts';

/**
 * What the web layer reads of a request; every framework's request maps onto it in a line.
 * node:http's IncomingMessage fits after `requestOf(req)` in node/.
 */
export interface RequestLike {
  /** The request target as received: path and query (origin-form), or an absolute URL. */
  url: string;
  /** Header names in lower case, as node:http gives them. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** True when TLS ended at this server. */
  encrypted?: boolean;
  /** The peer's address, checked against `trustProxy`. */
  remoteAddress?: string;
  /** A parsed form body, when a body parser ran first: PHPLib read the id from POST too. */
  body?: unknown;
}

/**
 * Where the web layer writes response headers. Each adapter maps it onto its framework's
 * response (node's setHeader/appendHeader, Fastify's reply.header, Hono's c.header).
 */
export interface HeaderSink {
  /** The header's current value, joined with ", " when repeated; undefined when absent. */
  get(name: string): string | undefined;
  /** Replaces the header. */
  set(name: string, value: string): void;
  /** Adds a line (Set-Cookie) or a list item (Vary) without removing earlier ones. */
  append(name: string, value: string): void;
}

/** The first value of a header. */
export function headerValue(request: RequestLike, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === 'string' ? value : value?.[0];
}

/**
 * Whether the request reached the client over HTTPS: TLS here, or a trusted proxy's
 * X-Forwarded-Proto. An untrusted peer's header is ignored: defends against a client
 * claiming HTTPS to make the server believe its cookies are protected.
 */
export function isSecure(request: RequestLike, options: ResolvedOptions): boolean {
  if (request.encrypted) return true;
  const address = request.remoteAddress;
  if (address === undefined || !options.trustProxy(plainAddress(address))) return false;
  const proto = headerValue(request, 'x-forwarded-proto');
  // The first hop is the client's; later ones were added by proxies in between.
  return proto?.split(',')[0]?.trim().toLowerCase() === 'https';
}

/**
 * The request's path and query (origin-form), whatever form the target came in. Leading
 * slashes are collapsed: `//evil.example/x` would otherwise be a link to another site
 * (defends against open redirects through selfUrl()). It always starts with one slash: an
 * opaque path (`a:.evil.example`) after a configured origin would otherwise name another host.
 */
export function pathAndQuery(request: RequestLike): string {
  let target = request.url;
  if (!target.startsWith('/')) {
    const url = URL.parse(target);
    target = url ? url.pathname + url.search : '/';
  }
  return target.replace(/^[/\\]*/, '/');
}

/** The query string without `?`, or ''. */
export function queryOf(request: RequestLike): string {
  const target = pathAndQuery(request);
  const mark = target.indexOf('?');
  if (mark < 0) return '';
  const hash = target.indexOf('#', mark);
  return target.slice(mark + 1, hash < 0 ? undefined : hash);
}
