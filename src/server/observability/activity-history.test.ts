import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../core/clock.ts';
import { Engine } from '../../core/engine.ts';
import { MemoryStore } from '../../store/memory/memory-store.ts';
import { ServerStats } from '../stats.ts';
import { ActivityHistory, type ActivityHistoryOptions } from './activity-history.ts';

function setup(options: Partial<ActivityHistoryOptions> = {}) {
  const clock = new ManualClock();
  const engine = new Engine({ store: new MemoryStore(), clock });
  const stats = new ServerStats();
  engine.subscribe((event) => stats.countEvent(event));
  const errors: unknown[] = [];
  const history = new ActivityHistory({
    engine,
    stats,
    clock: () => clock.now(),
    onError: (error) => errors.push(error),
    ...options,
  });
  const latest = () => history.points().at(-1)!.value;
  return { clock, engine, stats, history, errors, latest };
}

describe('ActivityHistory', () => {
  it('turns the counters into rates over the time between samples', async () => {
    const { clock, engine, stats, history, latest } = setup();
    for (const id of ['sess-0001', 'sess-0002', 'sess-0003']) await engine.create(id);
    stats.commands += 30;
    clock.advance(10_000);
    await history.sample();
    assert.equal(latest().sessions, 3);
    assert.equal(latest().createdPerMinute, 18);
    assert.equal(latest().commandsPerSecond, 3);

    await engine.destroy('sess-0001');
    clock.advance(20_000);
    await history.sample();
    assert.equal(latest().createdPerMinute, 0);
    assert.equal(latest().destroyedPerMinute, 3);
    assert.equal(latest().sessions, 2);
  });

  it('counts expired sessions, and EMPTY as destroyed ones', async () => {
    const { clock, engine, history, latest } = setup();
    await engine.create('short-lived', { timeout: 5 });
    await engine.create('long-lived');
    clock.advance(60_000);
    await engine.gc();
    await history.sample();
    assert.equal(latest().expiredPerMinute, 1);
    await engine.empty();
    clock.advance(60_000);
    await history.sample();
    assert.equal(latest().destroyedPerMinute, 1);
    assert.equal(latest().sessions, 0);
  });

  it('charts sessions by class once it has seen a session of each', async () => {
    const { engine, history, latest } = setup();
    await engine.create('a-shop-1', { cls: 'shop' });
    await engine.create('a-shop-2', { cls: 'shop' });
    await engine.create('a-forum-1', { cls: 'forum' });
    await engine.create('a-plain-1');
    await history.sample();
    assert.deepEqual(latest().classes, { shop: 2, forum: 1, default: 1 });
  });

  it('charts at most maxClasses classes; the rest count in the total only', async () => {
    const { engine, history, latest } = setup({ maxClasses: 2 });
    for (const cls of ['c1', 'c2', 'c3', 'c4']) await engine.create(`id-of-${cls}`, { cls });
    await history.sample();
    assert.equal(Object.keys(latest().classes).length, 2);
    assert.equal(latest().sessions, 4);
  });

  it('walks the ids a page per sample, so classes of a large store are found over time', async () => {
    const { engine, history, latest } = setup({ discoverPerStep: 2 });
    for (let i = 0; i < 6; i++) await engine.create(`id-${i}`, { cls: `class-${i}` });
    await history.sample();
    assert.equal(Object.keys(latest().classes).length, 2);
    await history.sample();
    await history.sample();
    assert.equal(Object.keys(latest().classes).length, 6);
  });

  it('keeps the window only: older samples fall off', async () => {
    const { clock, history } = setup({ stepMs: 10_000, windowMs: 30_000 });
    for (let i = 0; i < 5; i++) {
      clock.advance(10_000);
      await history.sample();
    }
    const points = history.points();
    assert.equal(points.length, 3);
    assert.equal(points.at(-1)!.at - points[0]!.at, 20_000);
    assert.deepEqual(
      history.points(points.at(-1)!.at).map((p) => p.at),
      [points.at(-1)!.at],
    );
  });

  it('does not extend the life of the sessions it looks at', async () => {
    const { clock, engine, history } = setup();
    await engine.create('watched', { timeout: 60 });
    clock.advance(50_000);
    await history.sample();
    clock.advance(20_000);
    assert.equal(await engine.ctl('watched', 'EXIST'), 0);
  });

  it('skips a sample the store cannot answer, and reports why', async () => {
    const { engine, history, errors } = setup();
    await history.sample();
    await engine.store.close();
    await history.sample();
    assert.equal(history.points().length, 1);
    assert.equal(errors.length, 1);
  });

  it('takes one sample at a time: a call during a sample waits for it', async () => {
    const { history } = setup();
    await Promise.all([history.sample(), history.sample()]);
    assert.equal(history.points().length, 1);
  });
});
