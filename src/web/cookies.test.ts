import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { readCookies, serializeCookie, type CookieAttributes } from './cookies.ts';

const ATTRIBUTES: CookieAttributes = {
  path: '/',
  maxAge: 0,
  httpOnly: true,
  secure: false,
  sameSite: 'Lax',
};

describe('readCookies', () => {
  it('finds every cookie of the name, in order, quotes removed and nothing decoded', () => {
    assert.deepEqual(readCookies('a=1; sid=abc; b=2;sid="def" ; sid=%41', 'sid'), [
      'abc',
      'def',
      '%41',
    ]);
  });

  it('ignores pairs without "=", empty names and other names that merely contain it', () => {
    assert.deepEqual(readCookies('sid; xsid=1; sidx=2; =3; sid =4', 'sid'), ['4']);
  });

  it('reads a header node gives as an array', () => {
    assert.deepEqual(readCookies(['a=1', 'sid=x'], 'sid'), ['x']);
  });

  it('skips values longer than a browser keeps, and stops after a handful of same-named cookies', () => {
    assert.deepEqual(readCookies(`sid=${'x'.repeat(5000)}; sid=ok`, 'sid'), ['ok']);
    assert.equal(readCookies('sid=1; '.repeat(100), 'sid').length, 8);
  });

  it('never throws, whatever the header', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (header) => {
        const values = readCookies(header, 'sid');
        assert.ok(Array.isArray(values));
      }),
    );
  });
});

describe('serializeCookie', () => {
  it('writes the attributes RFC 6265 defines, SameSite last', () => {
    assert.equal(
      serializeCookie('sid', 'abc', {
        path: '/app',
        domain: 'example.com',
        maxAge: 60,
        httpOnly: true,
        secure: true,
        sameSite: 'Strict',
      }),
      'sid=abc; Path=/app; Domain=example.com; Max-Age=60; HttpOnly; Secure; SameSite=Strict',
    );
  });

  it('a negative maxAge deletes the cookie for old and new clients alike', () => {
    assert.equal(
      serializeCookie('sid', '', { ...ATTRIBUTES, maxAge: -1 }),
      'sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax',
    );
  });

  it('refuses anything that could split the header or add an attribute', () => {
    assert.throws(() => serializeCookie('s id', 'x', ATTRIBUTES), TypeError);
    assert.throws(() => serializeCookie('sid', 'x; Domain=evil', ATTRIBUTES), TypeError);
    assert.throws(() => serializeCookie('sid', 'x\r\nSet-Cookie: a=b', ATTRIBUTES), TypeError);
    assert.throws(() => serializeCookie('sid', 'x', { ...ATTRIBUTES, path: '/;x' }), TypeError);
    assert.throws(
      () => serializeCookie('sid', 'x', { ...ATTRIBUTES, domain: 'a.com; Secure' }),
      TypeError,
    );
  });
});
