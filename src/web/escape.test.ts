import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeQueryComponent, encodeUrl, escapeHtml } from './escape.ts';

describe('escaping', () => {
  it('escapeHtml escapes the five characters that matter in text and quoted attributes', () => {
    assert.equal(escapeHtml(`"<a>" & 'b'`), '&quot;&lt;a&gt;&quot; &amp; &#39;b&#39;');
  });

  it('encodeQueryComponent leaves only unreserved characters and never throws', () => {
    assert.equal(encodeQueryComponent("a b&c=d/é!'()*"), 'a%20b%26c%3Dd%2F%C3%A9%21%27%28%29%2A');
    assert.equal(encodeQueryComponent('\uD800x'), '%EF%BF%BDx');
  });

  it('encodeUrl keeps a URL working and makes it safe in an attribute and a header', () => {
    assert.equal(encodeUrl('/a b?q="x"&r=<y>#f'), '/a%20b?q=%22x%22&r=%3Cy%3E#f');
    assert.equal(encodeUrl("/it's\r\nLocation: x"), '/it%27s%0D%0ALocation:%20x');
    assert.equal(encodeUrl('/%41%zz%'), '/%41%25zz%25');
  });

  it('no output of encodeUrl can break out of an attribute or split a header', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (input) => {
        // Only printable ASCII, no quotes, brackets or spaces: nothing ends an attribute or a line.
        assert.match(encodeUrl(input), /^[!#-&(-;=?-_a-~]*$/);
        assert.doesNotMatch(escapeHtml(input), /["'<>]/);
      }),
    );
  });
});
