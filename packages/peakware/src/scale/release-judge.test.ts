import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { judgeStep, zOf } from './release-judge.js';
import { checkReleaseRequest, RELEASE_DEFAULTS } from './release-spec.js';

const s = { ...RELEASE_DEFAULTS, minSamples: 50 };

describe('release analysis', () => {
  it('knows its z values', () => {
    assert.ok(Math.abs(zOf(0.95) - 1.6449) < 1e-3);
    assert.ok(Math.abs(zOf(0.99) - 2.3263) < 1e-3);
  });

  it('waits for the minimum sample size', () => {
    const v = judgeStep({ calls: 1000, errors: 0 }, { calls: 49, errors: 49 }, s);
    assert.deepEqual(v, { verdict: 'wait', reason: '49 of 50 calls to the new version so far' });
  });

  it('fails a significantly higher error rate, not a noisy one', () => {
    assert.equal(
      judgeStep({ calls: 1000, errors: 10 }, { calls: 100, errors: 20 }, s).verdict,
      'fail',
    );
    assert.equal(
      judgeStep({ calls: 1000, errors: 10 }, { calls: 60, errors: 2 }, s).verdict,
      'pass',
      '3.3 % of 60 against 1 % of 1000 is within chance',
    );
  });

  it('fails a p99 past the tolerance and the slack', () => {
    const base = { calls: 1000, errors: 0, p99: 20 };
    assert.equal(
      judgeStep(base, { calls: 100, errors: 0, p99: 30 }, s).verdict,
      'pass',
      '30 <= 20 × 1.25 + 5',
    );
    const v = judgeStep(base, { calls: 100, errors: 0, p99: 31 }, s);
    assert.equal(v.verdict, 'fail');
    assert.match(v.reason, /p99 31 ms against 20 ms \(allowed up to 30 ms\)/);
  });

  it('judges the mean RT when a side pushed no p99', () => {
    const v = judgeStep(
      { calls: 1000, errors: 0, rtAvg: 4 },
      { calls: 100, errors: 0, rtAvg: 84 },
      s,
    );
    assert.equal(v.verdict, 'fail');
    assert.match(v.reason, /^RT avg 84 ms against 4 ms/);
  });

  it('judges against the bounds alone with no baseline calls', () => {
    assert.equal(judgeStep({ calls: 0, errors: 0 }, { calls: 100, errors: 5 }, s).verdict, 'fail');
    assert.equal(judgeStep({ calls: 0, errors: 0 }, { calls: 100, errors: 0 }, s).verdict, 'pass');
  });
});

describe('release request', () => {
  it('applies the defaults and names the field of a problem', () => {
    const base = { app: 'shop', service: 'shop.inventory', version: 'v2', command: 'node v2.js' };
    assert.deepEqual(checkReleaseRequest(base).steps, [10, 25, 50, 100]);
    assert.throws(() => checkReleaseRequest({ ...base, steps: [50, 20, 100] }), {
      code: 'PEAK_SCALE_INVALID',
      message: /steps\[1\]: must be above the step before it/,
    });
    assert.throws(() => checkReleaseRequest({ ...base, minSamples: 0 }), /release minSamples/);
    assert.throws(() => checkReleaseRequest({ ...base, command: ' ' }), /release command/);
  });
});
