import { validateId } from '../core/ids.ts';
import { readCookies, serializeCookie } from './cookies.ts';
import type { RejectedIdReason, ResolvedOptions } from './options.ts';
import { headerValue, isSecure, queryOf, type HeaderSink, type RequestLike } from './request.ts';

/** Ids are at most 255 bytes (PROTOCOL.md); a signature adds a dot and 43 characters. */
const MAX_ID_BYTES = 255;

/** What the request carried. */
export interface Arrival {
  /** The id of the first well-formed, correctly signed token, or null. */
  id: string | null;
  /** Where that id came from. */
  via: 'cookie' | 'query' | 'header' | null;
  /** Whether any token came at all, valid or not: a stale cookie is cleared. */
  tokenSent: boolean;
  /** Whether the browser sent our cookie (it keeps cookies, so URLs need not carry the id). */
  cookieSent: boolean;
  /** Whether URLs of this response carry the id: PHPLib's get mode, or its fallback. */
  propagate: boolean;
}

/**
 * Reads the session id from where the carrier puts it. Never throws: a malformed, oversized or
 * badly signed token counts as no id.
 */
export function readArrival(request: RequestLike, options: ResolvedOptions): Arrival {
  const { carrier } = options;
  const cookies =
    carrier === 'cookie' || carrier === 'cookie-or-query'
      ? readCookies(request.headers['cookie'], options.cookieName)
      : [];
  const cookieSent = cookies.length > 0;
  let tokens: string[] = cookies;
  let via: Arrival['via'] = 'cookie';
  if (carrier === 'header') {
    tokens = optional(headerValue(request, options.header));
    via = 'header';
  } else if (carrier === 'query' || (carrier === 'cookie-or-query' && !cookieSent)) {
    tokens = queryTokens(request, options.name);
    via = 'query';
  }
  // With same-named cookies (one tossed in from a sibling domain) the first good one wins.
  for (const token of tokens) {
    const id = idOf(token, options);
    if (id !== null) return { id, via, tokenSent: true, cookieSent, propagate: via === 'query' };
  }
  const propagate = carrier === 'query' || (carrier === 'cookie-or-query' && !cookieSent);
  return { id: null, via: null, tokenSent: tokens.length > 0, cookieSent, propagate };
}

/**
 * The id inside a token, if it is well formed and, with keys, signed by one of them. A token
 * refused is reported to `onRejectedId`, with the reason only.
 */
export function idOf(token: string, options: ResolvedOptions): string | null {
  if (token.length > MAX_ID_BYTES + 44) return rejectId(options, 'malformed');
  const id = options.signer.unsign(token);
  if (id === null) return rejectId(options, 'bad-signature');
  try {
    // Only RFC 6265 cookie-octets: defends against ids that split headers or smuggle markup.
    validateId(id, MAX_ID_BYTES);
    return id;
  } catch {
    return rejectId(options, 'malformed');
  }
}

/**
 * Tells `onRejectedId` why an id was not used, and never which id: defends against live ids
 * reaching the app's logs. Never throws: what the callback throws goes to `onError`.
 */
export function rejectId(options: ResolvedOptions, reason: RejectedIdReason): null {
  try {
    options.onRejectedId(reason);
  } catch (error) {
    options.onError(error);
  }
  return null;
}

/**
 * Tells the client its id (a token), or to forget it (null): a Set-Cookie line, or the
 * response header of the 'header' carrier. The 'query' carrier sends nothing; URLs carry it.
 */
export function sendToken(
  sink: HeaderSink,
  token: string | null,
  request: RequestLike,
  options: ResolvedOptions,
): void {
  if (options.carrier === 'header') {
    sink.set(options.header, token ?? '');
    return;
  }
  if (options.carrier === 'query') return;
  const { cookie } = options;
  sink.append(
    'set-cookie',
    serializeCookie(options.cookieName, token ?? '', {
      path: cookie.path,
      ...(cookie.domain !== undefined && { domain: cookie.domain }),
      maxAge: token === null ? -1 : cookie.maxAge,
      httpOnly: cookie.httpOnly,
      secure: cookie.secure === 'auto' ? isSecure(request, options) : cookie.secure,
      sameSite: cookie.sameSite,
    }),
  );
}

function optional(value: string | undefined): string[] {
  return value === undefined ? [] : [value.trim()];
}

/** The id from the query string, then from a parsed form body (PHPLib read GET, then POST). */
function queryTokens(request: RequestLike, name: string): string[] {
  const tokens = new URLSearchParams(queryOf(request)).getAll(name).slice(0, 1);
  const body = request.body;
  if (typeof body === 'object' && body !== null && Object.hasOwn(body, name)) {
    const value = (body as Record<string, unknown>)[name];
    if (typeof value === 'string') tokens.push(value);
  }
  return tokens;
}
