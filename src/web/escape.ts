/**
 * Escaping for the contexts the URL helpers write into: HTML attributes and URLs.
 */

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Text made safe inside HTML, quoted attributes (either quote) included.
 * @example escapeHtml(`"<a>" & 'b'`) // '&quot;&lt;a&gt;&quot; &amp; &#39;b&#39;'
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/**
 * A query-string component: everything but RFC 3986 unreserved characters percent-encoded as
 * UTF-8. Unlike encodeURIComponent it never throws: a lone surrogate becomes U+FFFD.
 */
export function encodeQueryComponent(text: string): string {
  return encodeURIComponent(wellFormed(text)).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * A URL with every character that could end an attribute, start a tag or split a header
 * percent-encoded (quotes, angle brackets, backtick, spaces, controls, non-ASCII), as PHPLib 7.4's
 * url() did for `<>"'` and space. Existing %XX escapes are kept; a stray % is encoded.
 * @example encodeUrl('/a b?q="x"') // '/a%20b?q=%22x%22'
 */
export function encodeUrl(url: string): string {
  return wellFormed(url).replace(
    /%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~:/?#[\]@!$&()*+,;=%]/gu,
    (c) => encodeURIComponent(c).replace(/'/g, '%27'),
  );
}

/** Lone surrogates replaced by U+FFFD (String#toWellFormed, which es2023 lacks). */
function wellFormed(text: string): string {
  return text.replace(
    /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
    '\uFFFD',
  );
}
