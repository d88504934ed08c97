import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addQuery, hiddenField, selfUrl, sessionUrl, type UrlContext } from './url-helpers.ts';

const GET_MODE: UrlContext = {
  name: 'sid',
  propagate: true,
  self: '/page?a=1&sid=old',
  origin: null,
  ownOrigins: new Set(['https://shop.example']),
};
const COOKIE_MODE: UrlContext = { ...GET_MODE, propagate: false };

describe("PHPLib's URL helpers", () => {
  it('url() appends the id in get mode, before the fragment, replacing one already there', () => {
    assert.equal(sessionUrl('/next', 'T', GET_MODE), '/next?sid=T');
    assert.equal(sessionUrl('/next?x=1&', 'T', GET_MODE), '/next?x=1&sid=T');
    assert.equal(sessionUrl('/next?sid=stale&x=1#top', 'T', GET_MODE), '/next?x=1&sid=T#top');
    assert.equal(
      sessionUrl('https://shop.example/a', 'T', GET_MODE),
      'https://shop.example/a?sid=T',
    );
  });

  it('url() in cookie mode only strips a trailing ? or &, as PHPLib did', () => {
    assert.equal(sessionUrl('/next?x=1&', 'T', COOKIE_MODE), '/next?x=1');
  });

  it('url() never gives the id to another site, however the URL is spelled', () => {
    for (const foreign of [
      'https://evil.example/x',
      '//evil.example/x',
      '/\\evil.example/x',
      'http://shop.example/x',
      'javascript:alert(1)',
      'mailto:a@b.c',
    ]) {
      assert.doesNotMatch(sessionUrl(foreign, 'T', GET_MODE), /sid=T/, foreign);
    }
  });

  it('url() escapes what could break out of an attribute', () => {
    assert.equal(sessionUrl('/a"><script>', null, GET_MODE), '/a%22%3E%3Cscript%3E');
  });

  it('selfUrl() is this request with the id replaced, absolute only on a trusted origin', () => {
    assert.equal(selfUrl('T', GET_MODE), '/page?a=1&sid=T');
    assert.equal(selfUrl('T', COOKIE_MODE), '/page?a=1');
    assert.equal(
      selfUrl('T', { ...GET_MODE, origin: 'https://shop.example' }),
      'https://shop.example/page?a=1&sid=T',
    );
  });

  it('addQuery() starts with & when selfUrl() has a query, else with ?', () => {
    assert.equal(addQuery({ p: 2, q: 'a&b' }, 'T', GET_MODE), '&p=2&q=a%26b');
    assert.equal(addQuery({ p: 2 }, null, { ...COOKIE_MODE, self: '/page?sid=x' }), '?p=2');
    assert.equal(addQuery({}, 'T', GET_MODE), '');
  });

  it('hiddenField() escapes the id for HTML, and is empty in cookie mode', () => {
    assert.equal(
      hiddenField(`a"<>&'b`, GET_MODE),
      '<input type="hidden" name="sid" value="a&quot;&lt;&gt;&amp;&#39;b">',
    );
    assert.equal(hiddenField('T', COOKIE_MODE), '');
    assert.equal(hiddenField(null, GET_MODE), '');
  });
});
