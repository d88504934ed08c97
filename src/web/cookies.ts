/**
 * Cookie parsing and serialisation per RFC 6265 (https://www.rfc-editor.org/rfc/rfc6265).
 * Reading never throws: a malformed or oversized Cookie header yields fewer values, not an error.
 */

/** RFC 6265 §4.1.1 cookie-name is an RFC 7230 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 6265 §4.1.1 cookie-octet: visible ASCII but DQUOTE, comma, semicolon and backslash. */
const COOKIE_OCTETS = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;
/** RFC 6265 §4.1.1 path-value: any CHAR but CTLs and ";". */
const PATH_VALUE = /^[\x20-\x3a\x3c-\x7e]+$/;
/** A domain-value: letters, digits, dots and hyphens (RFC 1034 §3.5 labels), optional dot first. */
const DOMAIN_VALUE =
  /^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
/** Browsers keep at most 4096 bytes per cookie (RFC 6265 §6.1); a longer value is not ours. */
const MAX_VALUE_LENGTH = 4096;
/** At most this many same-named cookies are considered: bounds the work a hostile header causes. */
const MAX_SAME_NAME = 8;

/** Attributes of a Set-Cookie line. */
export interface CookieAttributes {
  path: string;
  domain?: string;
  /** Seconds; 0 gives a browser-session cookie (no Max-Age), negative deletes the cookie. */
  maxAge: number;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'Strict' | 'Lax' | 'None';
}

/** Whether `name` can be a cookie name (an RFC 7230 token). */
export const isCookieName = (name: string): boolean => TOKEN.test(name);

/** Whether `value` can be sent as a cookie value without quoting or encoding. */
export const isCookieValue = (value: string): boolean => COOKIE_OCTETS.test(value);

/** Whether `path` can stand in a Path attribute. */
export const isCookiePath = (path: string): boolean =>
  path.startsWith('/') && PATH_VALUE.test(path);

/** Whether `domain` can stand in a Domain attribute. */
export const isCookieDomain = (domain: string): boolean =>
  domain.length <= 253 && DOMAIN_VALUE.test(domain);

/**
 * The values of every cookie called `name` in a Cookie header, in the order sent (browsers send
 * the most specific path first, RFC 6265 §5.4). Surrounding double quotes are removed; values are
 * not percent-decoded. Malformed pairs are skipped; nothing here throws.
 *
 * @example
 * readCookies('a=1; sid=abc; sid="def"', 'sid'); // ['abc', 'def']
 */
export function readCookies(
  header: string | readonly string[] | undefined,
  name: string,
): string[] {
  if (header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join('; ');
  const values: string[] = [];
  let at = 0;
  while (at < text.length && values.length < MAX_SAME_NAME) {
    const semicolon = text.indexOf(';', at);
    const end = semicolon < 0 ? text.length : semicolon;
    // Searched within the pair only: a search to the header's end would make a `;` storm
    // without `=` quadratic (defends against CPU exhaustion by one request).
    const pair = text.slice(at, end);
    const equals = pair.indexOf('=');
    if (equals >= 0 && pair.slice(0, equals).trim() === name) {
      let value = pair.slice(equals + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        value = value.slice(1, -1);
      }
      if (value.length <= MAX_VALUE_LENGTH) values.push(value);
    }
    at = end + 1;
  }
  return values;
}

/**
 * A Set-Cookie header value.
 * @throws TypeError when the name, value, path or domain cannot be sent as they are (a
 * programming error: they come from checked options and made ids)
 */
export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  // Checked here too, not only in options: defends against header injection through any caller.
  if (!isCookieName(name)) throw new TypeError('cookie name is not an RFC 7230 token');
  if (!isCookieValue(value)) throw new TypeError('cookie value has bytes RFC 6265 forbids');
  if (!isCookiePath(attributes.path)) throw new TypeError('cookie path is not a valid path-value');
  let line = `${name}=${value}; Path=${attributes.path}`;
  if (attributes.domain !== undefined) {
    if (!isCookieDomain(attributes.domain)) throw new TypeError('cookie domain is not valid');
    line += `; Domain=${attributes.domain}`;
  }
  if (attributes.maxAge < 0) {
    // Both, for clients that predate Max-Age: the cookie is gone at once.
    line += '; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT';
  } else if (attributes.maxAge > 0) {
    line += `; Max-Age=${Math.floor(attributes.maxAge)}`;
  }
  if (attributes.httpOnly) line += '; HttpOnly';
  if (attributes.secure) line += '; Secure';
  line += `; SameSite=${attributes.sameSite}`;
  return line;
}
