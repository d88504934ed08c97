import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TimeSeries } from './time-series.ts';

describe('TimeSeries', () => {
  it('gives its points back oldest first', () => {
    const series = new TimeSeries<number>(4);
    series.push(10, 1);
    series.push(20, 2);
    assert.deepEqual(series.points(), [
      { at: 10, value: 1 },
      { at: 20, value: 2 },
    ]);
    assert.deepEqual(series.latest(), { at: 20, value: 2 });
  });

  it('drops the oldest point once full, so its memory never grows', () => {
    const series = new TimeSeries<number>(3);
    for (let i = 1; i <= 7; i++) series.push(i * 10, i);
    assert.equal(series.size, 3);
    assert.deepEqual(
      series.points().map((p) => p.value),
      [5, 6, 7],
    );
    assert.deepEqual(series.latest(), { at: 70, value: 7 });
  });

  it('points(since) leaves out what came before `since`', () => {
    const series = new TimeSeries<string>(10);
    for (const at of [100, 200, 300]) series.push(at, `at ${at}`);
    assert.deepEqual(
      series.points(200).map((p) => p.at),
      [200, 300],
    );
    assert.deepEqual(series.points(301), []);
  });

  it('is empty before the first point', () => {
    const series = new TimeSeries<number>(2);
    assert.equal(series.latest(), undefined);
    assert.deepEqual(series.points(), []);
  });

  it('refuses a capacity that is not a positive integer', () => {
    assert.throws(() => new TimeSeries(0), RangeError);
    assert.throws(() => new TimeSeries(1.5), RangeError);
  });
});
