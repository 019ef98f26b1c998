import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataFeed, parseCsv } from './data-feed.js';
import {
  constantRate,
  modelDurationS,
  rampingRate,
  rateAt,
  rateSteps,
  validateModel,
} from './load-model.js';

describe('load models', () => {
  it('give the arrival rate over time', () => {
    const ramp = rampingRate(0, [
      { rate: 100, durationS: 10 },
      { rate: 100, durationS: 5 },
      { rate: 0, durationS: 5 },
    ]);
    assert.equal(rateAt(ramp, 5), 50);
    assert.equal(rateAt(ramp, 12), 100);
    assert.equal(rateAt(ramp, 17.5), 50);
    assert.equal(rateAt(ramp, 21), 0);
    assert.equal(modelDurationS(ramp), 20);
    const steps = rateSteps([
      { rate: 10, durationS: 2 },
      { rate: 500, durationS: 1 },
    ]);
    assert.equal(rateAt(steps, 1.9), 10);
    assert.equal(rateAt(steps, 2.1), 500);
    assert.equal(rateAt(constantRate(7, 1), 0.5), 7);
  });

  it('refuse malformed models, naming the field', () => {
    assert.throws(() => constantRate(-1, 10), {
      code: 'PEAK_STRESS_INVALID',
      message: /rate must be/,
    });
    assert.throws(() => rateSteps([]), /stages must be a non-empty array/);
    assert.throws(() => validateModel({ kind: 'nope' } as never), /kind must be/);
  });
});

describe('data feeds', () => {
  it('parse CSV with quotes and hand rows out in turn', () => {
    const rows = parseCsv('id,name\n1,"a, ""quoted"" b"\r\n2,plain\n');
    assert.deepEqual(rows, [
      { id: '1', name: 'a, "quoted" b' },
      { id: '2', name: 'plain' },
    ]);
    const feed = new DataFeed(rows);
    assert.deepEqual([feed.next().id, feed.next().id, feed.next().id], ['1', '2', '1']);
  });
});
