import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withTimingSafeEqual } from '../../test/support/timing-safe.ts';
import { Auth } from './auth.ts';

/** What a client sends on the wire for `text`: its UTF-8 bytes, one per code unit. */
const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

describe('Auth', () => {
  it('without passwords, every client starts with every right', () => {
    assert.deepEqual(new Auth().initial(), { authenticated: true, admin: true });
  });

  it('the default password grants all but the admin right when an admin password exists', () => {
    const auth = new Auth({ password: 'pw', adminPassword: 'root' });
    assert.deepEqual(auth.initial(), { authenticated: false, admin: false });
    assert.deepEqual(auth.check(undefined, 'pw'), { authenticated: true, admin: false });
    assert.deepEqual(auth.check('default', 'pw'), { authenticated: true, admin: false });
    assert.deepEqual(auth.check('admin', 'root'), { authenticated: true, admin: true });
    assert.deepEqual(auth.check(undefined, 'root'), { authenticated: true, admin: true });
    assert.equal(auth.check('admin', 'pw'), null);
    assert.equal(auth.check('default', 'root'), null);
    assert.equal(auth.check('someone', 'pw'), null);
  });

  it('a non-ASCII password matches its UTF-8 bytes and not the low bytes of its characters', () => {
    const auth = new Auth({ password: 'пароль' });
    assert.deepEqual(auth.check(undefined, wire('пароль')), { authenticated: true, admin: true });
    assert.equal(auth.check(undefined, '?0@>;L'), null);
    assert.equal(auth.check(undefined, 'пароль'), null);
  });

  it('compares every password through crypto.timingSafeEqual, whose verdict alone decides', () => {
    const auth = new Auth({ password: 'pw', adminPassword: 'root' });
    const calls = withTimingSafeEqual(undefined, () => {
      assert.equal(auth.check(undefined, 'wrong'), null);
    });
    // Both passwords were compared, each as a 32-byte SHA-256 digest.
    assert.equal(calls.length, 2);
    for (const [given, expected] of calls) {
      assert.equal(given.length, 32);
      assert.equal(expected.length, 32);
    }
    withTimingSafeEqual(false, () => assert.equal(auth.check(undefined, 'pw'), null));
    withTimingSafeEqual(true, () =>
      assert.deepEqual(auth.check('default', 'wrong'), { authenticated: true, admin: false }),
    );
  });
});
