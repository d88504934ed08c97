import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpiryWheel } from './expiry-wheel.ts';

describe('ExpiryWheel', () => {
  it('hands back every id of a due bucket as it was scheduled, of any length or character', () => {
    const wheel = new ExpiryWheel();
    const ids = ['a', 'x'.repeat(255), 'y'.repeat(300), 'ünïcødé', '\u2603 snow', ''];
    for (let i = 0; i < 1000; i++) ids.push(`session-${i}`);
    for (const id of ids) assert.equal(wheel.schedule(id, 1500), 2);
    assert.equal(wheel.earliestDue(1000), undefined, 'not due before (key-1) * 1000');
    const due = wheel.earliestDue(1001)!;
    assert.equal(due.key, 2);
    assert.deepEqual([...due.ids].sort(), [...ids].sort());
  });

  it('keeps what the owner puts back, and what is scheduled into a bucket once it is open', () => {
    const wheel = new ExpiryWheel();
    wheel.schedule('late', 3000);
    wheel.schedule('early', 1000);
    const first = wheel.earliestDue(5000)!;
    assert.deepEqual(first.ids, ['early']);
    first.ids.pop();
    wheel.schedule('again', 900);
    assert.deepEqual(wheel.earliestDue(5000)!.ids, ['again']);
    wheel.earliestDue(5000)!.ids.pop();
    wheel.dropEarliest();
    assert.deepEqual(wheel.earliestDue(5000), { key: 3, ids: ['late'] });
    wheel.clear();
    assert.equal(wheel.earliestDue(5000), undefined);
  });
});
