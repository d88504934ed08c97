import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Engine } from '../core/engine.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { createSessions } from './manager.ts';
import type { SessionOptions } from './options.ts';

const engine = new Engine({ store: new MemoryStore() });
const make = (options: Partial<SessionOptions>) => () => createSessions({ engine, ...options });

describe('options are checked at startup', () => {
  it('the defaults are the safe ones', () => {
    const { options } = createSessions({ engine });
    assert.equal(options.cookieName, 'sessiond');
    assert.equal(options.className, 'sessiond');
    assert.equal(options.carrier, 'cookie');
    assert.equal(options.strict, true);
    assert.deepEqual(options.cookie, {
      httpOnly: true,
      sameSite: 'Lax',
      secure: 'auto',
      path: '/',
      domain: undefined,
      maxAge: 0,
    });
    assert.equal(options.cache, 'no');
    assert.deepEqual(options.gc, { probability: 0.01 });
    assert.equal(options.concurrency, 'none');
    assert.equal(options.trustProxy('127.0.0.1'), false);
    // Idle sessions end after 30 minutes; the absolute lifetime is the app's choice (SECURITY.md).
    assert.equal(options.idleTimeout, 1800);
    assert.equal(options.absoluteTimeout, 0);
    // Renewal and regeneration on a change of user are opt-in; rejected ids go nowhere.
    assert.equal(options.renewAfter, 0);
    assert.equal(options.renewGrace, 60);
    assert.equal(options.regenerateOnUserChange, false);
    assert.equal(options.onRejectedId('unknown'), undefined);
  });

  it('exactly one of engine, client or backend', () => {
    assert.throws(() => createSessions({}), /exactly one/);
    assert.throws(make({ backend: createSessions({ engine }).backend }), /exactly one/);
  });

  it('refuses names, paths and domains that could inject into a header', () => {
    assert.throws(make({ name: 'a b' }), TypeError);
    assert.throws(make({ name: 'a;b' }), TypeError);
    assert.throws(make({ cookie: { path: '/a;b' } }), TypeError);
    assert.throws(make({ cookie: { domain: 'a.com; Secure' } }), TypeError);
    assert.throws(make({ header: 'x session' }), TypeError);
  });

  it('refuses combinations browsers would reject', () => {
    assert.throws(make({ cookie: { sameSite: 'none' } }), /secure/);
    assert.throws(make({ cookie: { hostPrefix: true, domain: 'example.com' } }), /hostPrefix/);
    assert.throws(make({ cookie: { hostPrefix: true, path: '/app' } }), /hostPrefix/);
    assert.throws(make({ cookie: { hostPrefix: true, secure: false } }), /hostPrefix/);
    assert.equal(
      createSessions({ engine, cookie: { hostPrefix: true } }).options.cookieName,
      '__Host-sessiond',
    );
  });

  it('refuses values out of range and unknown choices', () => {
    assert.throws(make({ idleTimeout: -1 }), RangeError);
    assert.throws(make({ absoluteTimeout: 1.5 }), RangeError);
    assert.throws(make({ cookie: { maxAge: -5 } }), RangeError);
    assert.throws(make({ gc: { probability: 2 } }), RangeError);
    assert.throws(make({ gc: { intervalMs: 0 } }), RangeError);
    assert.throws(make({ lock: { leaseMs: 0 } }), RangeError);
    assert.throws(make({ carrier: 'url' as never }), TypeError);
    assert.throws(make({ cache: 'sometimes' as never }), TypeError);
    assert.throws(make({ concurrency: 'optimistic' as never }), TypeError);
    assert.throws(make({ keys: ['too short'] }), RangeError);
  });

  it('refuses a bad renewAfter, renewGrace, regenerateOnUserChange, onRejectedId or clock, and renewal with a URL carrier', () => {
    assert.throws(make({ renewAfter: -1 }), RangeError);
    assert.throws(make({ renewAfter: 0.5 }), RangeError);
    assert.throws(make({ renewGrace: 0 }), /renewGrace must be positive/);
    assert.throws(make({ renewGrace: 301 }), /maxGraceSeconds \(300\)/);
    assert.throws(make({ regenerateOnUserChange: 'yes' as never }), TypeError);
    assert.throws(make({ onRejectedId: 'log' as never }), /onRejectedId must be a function/);
    assert.throws(make({ clock: {} as never }), /clock/);
    // Links already written would carry the replaced id.
    assert.throws(make({ renewAfter: 60, carrier: 'query' }), /cookie or header carrier/);
    assert.throws(
      make({ regenerateOnUserChange: true, carrier: 'cookie-or-query' }),
      /cookie or header carrier/,
    );
    const { options } = createSessions({ engine, renewAfter: 900, renewGrace: 300 });
    assert.deepEqual([options.renewAfter, options.renewGrace], [900, 300]);
  });

  it('baseUrl must be an http(s) origin, without a path', () => {
    assert.equal(
      createSessions({ engine, baseUrl: 'https://Example.com:8443/' }).options.baseOrigin,
      'https://example.com:8443',
    );
    assert.throws(make({ baseUrl: 'https://example.com/app' }), /origin only/);
    assert.throws(make({ baseUrl: 'ftp://example.com' }), /http/);
    assert.throws(make({ baseUrl: 'not a url' }), /http/);
  });

  it('trustProxy takes addresses, matching IPv4 peers seen on a dual-stack socket', () => {
    const { options } = createSessions({ engine, trustProxy: ['10.0.0.1'] });
    assert.equal(options.trustProxy('10.0.0.1'), true);
    assert.equal(options.trustProxy('::ffff:10.0.0.1'), true);
    assert.equal(options.trustProxy('10.0.0.2'), false);
  });
});
