import { encodeQueryComponent, encodeUrl, escapeHtml } from './escape.ts';

/** What PHPLib's URL helpers need to know of one request. */
export interface UrlContext {
  /** The query parameter that carries the id. */
  name: string;
  /** Whether URLs carry the id on this request (get mode, or the cookie fallback). */
  propagate: boolean;
  /** The request's path and query, leading slashes collapsed. */
  self: string;
  /** The origin of absolute URLs (configured `baseUrl`, or an allowed Host), or null. */
  origin: string | null;
  /** Origins (scheme://host[:port]) that may receive the id in their URLs. */
  ownOrigins: ReadonlySet<string>;
}

// A base no real URL has: what resolves against it and keeps its host is relative.
const PROBE = 'http://relative.invalid';

/**
 * PHPLib's url(): `u` without a trailing `?` or `&`; with the id appended (replacing one already
 * there) when URLs carry it and `u` stays on this site. Characters that could break out of an
 * attribute or split a header are percent-encoded.
 */
export function sessionUrl(u: string, token: string | null, context: UrlContext): string {
  let url = u;
  const hash = url.indexOf('#');
  const fragment = hash < 0 ? '' : url.slice(hash);
  if (hash >= 0) url = url.slice(0, hash);
  url = url.replace(/[?&]+$/, '');
  if (context.propagate && token !== null && isOwn(url, context)) {
    url = withoutParam(url, context.name);
    url += `${url.includes('?') ? '&' : '?'}${encodeQueryComponent(context.name)}=${encodeQueryComponent(token)}`;
  }
  return encodeUrl(url + fragment);
}

/**
 * PHPLib's self_url(): this request's URL through `sessionUrl`. Relative unless an origin was
 * configured or the Host header is an allowed one: never built from an unchecked Host header
 * (defends against cache poisoning and redirects to a host the attacker names).
 */
export function selfUrl(token: string | null, context: UrlContext): string {
  const path = sessionUrl(withoutParam(context.self, context.name), token, context);
  return context.origin === null ? path : context.origin + path;
}

/**
 * PHPLib's add_query(): `k=v` pairs, URL-encoded, to append to selfUrl(): starting with `&`
 * when selfUrl() already has a query, else with `?`.
 */
export function addQuery(
  params: Readonly<Record<string, string | number | boolean>>,
  token: string | null,
  context: UrlContext,
): string {
  const pairs = Object.entries(params).map(
    ([key, value]) => `${encodeQueryComponent(key)}=${encodeQueryComponent(String(value))}`,
  );
  if (pairs.length === 0) return '';
  return (selfUrl(token, context).includes('?') ? '&' : '?') + pairs.join('&');
}

/**
 * PHPLib's hidden_session(): a hidden form field carrying the id, escaped for HTML. Empty when
 * URLs do not carry the id: the id stays out of page markup, where HttpOnly could not protect it.
 */
export function hiddenField(token: string | null, context: UrlContext): string {
  if (!context.propagate || token === null) return '';
  return `<input type="hidden" name="${escapeHtml(context.name)}" value="${escapeHtml(token)}">`;
}

/**
 * Whether the id may ride in `url`: relative URLs and this site's origins only. Parsed as a
 * browser parses (`/\evil.example` is another host to it): defends against leaking the id to
 * other sites through links and their Referer.
 */
function isOwn(url: string, context: UrlContext): boolean {
  const parsed = URL.parse(url, PROBE);
  if (!parsed) return false;
  if (parsed.origin === PROBE) return !/^[a-z][a-z0-9+.-]*:/i.test(url);
  return context.ownOrigins.has(parsed.origin);
}

/** `url` without any `name=` parameter (PHPLib 7.4 removed an existing one). */
function withoutParam(url: string, name: string): string {
  const mark = url.indexOf('?');
  if (mark < 0) return url;
  const kept = url
    .slice(mark + 1)
    .split('&')
    .filter((pair) => pair !== '' && decodedKey(pair) !== name);
  return kept.length === 0 ? url.slice(0, mark) : `${url.slice(0, mark)}?${kept.join('&')}`;
}

function decodedKey(pair: string): string {
  const equals = pair.indexOf('=');
  return (
    new URLSearchParams(`${equals < 0 ? pair : pair.slice(0, equals)}=`).keys().next().value ?? ''
  );
}
