import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SessionValues } from './values.ts';

const loaded = (vars: Record<string, string>) => new SessionValues(new Map(Object.entries(vars)));

describe('SessionValues', () => {
  it('thaws JSON lazily, and text that is not JSON reads back as itself', () => {
    const values = loaded({ n: '42', list: '["a"]', raw: 'written by PHP' });
    assert.equal(values.get('n'), 42);
    assert.deepEqual(values.get('list'), ['a']);
    assert.equal(values.get('raw'), 'written by PHP');
    assert.deepEqual(values.changes(), { set: [], unset: [] }, 'reading changes nothing');
  });

  it('stored code stays inert text: nothing is evaluated or revived (PHPLib eval-ed it)', () => {
    const attacks = {
      js: 'globalThis.__sessiondPwned = 1',
      php: 'O:8:"stdClass":1:{s:1:"a";s:26:"system(\'rm -rf /\'); exit;";}',
      proto: '{"__proto__":{"__sessiondPwned":1},"constructor":{"prototype":{"x":1}}}',
      fn: '{"toJSON":"function(){return 1}","valueOf":"() => 1"}',
    };
    const values = loaded(attacks);
    assert.equal(values.get('js'), attacks.js);
    assert.equal(values.get('php'), attacks.php);
    const proto = values.get('proto') as Record<string, unknown>;
    // JSON.parse makes "__proto__" an own key; nothing reaches Object.prototype.
    assert.ok(Object.hasOwn(proto, '__proto__'));
    assert.equal(({} as Record<string, unknown>)['__sessiondPwned'], undefined);
    assert.equal(typeof (values.get('fn') as Record<string, unknown>)['toJSON'], 'string');
    assert.equal((globalThis as Record<string, unknown>)['__sessiondPwned'], undefined);
  });

  it('writes only what changed, in-place changes included', () => {
    const values = loaded({ a: '1', b: '{"x":1}', c: '"same"' });
    values.set('a', 2);
    (values.get('b') as { x: number }).x = 2;
    values.set('c', 'same');
    values.set('d', null);
    assert.deepEqual(values.changes(), {
      set: [
        ['a', '2'],
        ['b', '{"x":2}'],
        ['d', 'null'],
      ],
      unset: [],
    });
  });

  it('set(name, undefined) removes a variable at once', () => {
    const values = loaded({ a: '1' });
    values.set('a', undefined);
    assert.equal(values.has('a'), false);
    assert.deepEqual(values.changes(), { set: [], unset: ['a'] });
  });

  it('an unregistered variable keeps its value for the request, then is removed', () => {
    const values = loaded({ a: '1' });
    values.unregister('a');
    assert.equal(values.get('a'), 1);
    assert.equal(values.isRegistered('a'), false);
    const changes = values.changes();
    assert.deepEqual(changes, { set: [], unset: ['a'] });
    values.saved(changes);
    assert.equal(values.has('a'), false);
  });

  it('register() gives an initial value only to a variable without one, and re-registers', () => {
    const values = loaded({ a: '1' });
    values.register('a', 0);
    values.register('b', 0);
    assert.deepEqual([values.get('a'), values.get('b')], [1, 0]);
    values.unregister('a');
    values.register('a', 5);
    assert.equal(values.isRegistered('a'), true);
    assert.deepEqual(values.changes(), { set: [['b', '0']], unset: [] });
  });

  it('a second save writes only what changed after the first', () => {
    const values = loaded({});
    values.set('a', 1);
    values.saved(values.changes());
    values.set('b', 2);
    assert.deepEqual(values.changes(), { set: [['b', '2']], unset: [] });
  });

  it('a value with no JSON form is refused at set()', () => {
    const values = loaded({});
    assert.throws(() => values.set('n', 1n), TypeError);
    assert.throws(() => values.set('f', () => 1), TypeError);
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    assert.throws(() => values.set('c', cycle), TypeError);
  });

  it('a variable named __proto__ is an ordinary variable', () => {
    const values = loaded({ ['__proto__']: '{"polluted":true}' });
    assert.deepEqual(values.get('__proto__'), { polluted: true });
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});
