import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ScaleRecommender } from './scale-decision.js';
import { checkScalePolicy, resolvePolicy, type ScalePolicy } from './scale-policy.js';

const T0 = 1_700_000_000_000;
const policy = (p: Partial<ScalePolicy> = {}) =>
  resolvePolicy({
    metric: 'cpu',
    target: 50,
    min: 1,
    max: 6,
    step: 2,
    cooldownMs: 10_000,
    scaleUpWindowMs: 0,
    scaleDownWindowMs: 60_000,
    ...p,
  });

describe('scaling decisions', () => {
  it('scales out by the ratio, bounded by step and max', () => {
    const r = new ScaleRecommender();
    assert.deepEqual(
      r.decide({ policy: policy(), current: 1, value: 150, now: T0, lastChangeAt: undefined }),
      { action: 'out', desired: 3, raw: 3, reason: 'cpu 150 > target 50' },
    );
    const v = r.decide({
      policy: policy(),
      current: 3,
      value: 200,
      now: T0 + 20_000,
      lastChangeAt: T0,
    });
    assert.equal(v.raw, 6);
    assert.equal(v.desired, 5, 'step 2');
  });

  it('holds within the tolerance and with no figure', () => {
    const r = new ScaleRecommender();
    assert.equal(
      r.decide({ policy: policy(), current: 2, value: 54, now: T0, lastChangeAt: undefined })
        .action,
      'hold',
    );
    assert.match(
      r.decide({ policy: policy(), current: 2, value: undefined, now: T0, lastChangeAt: undefined })
        .reason,
      /no cpu figure/,
    );
  });

  it('changes at most once per cooldown however the figure flaps', () => {
    const r = new ScaleRecommender();
    const p = policy({ scaleDownWindowMs: 0 });
    let current = 2;
    let lastChangeAt: number | undefined;
    const changes: number[] = [];
    for (let t = 0; t < 30_000; t += 1000) {
      const value = (t / 1000) % 2 === 0 ? 150 : 5;
      const v = r.decide({ policy: p, current, value, now: T0 + t, lastChangeAt });
      if (v.action !== 'hold') {
        changes.push(t);
        current = v.desired;
        lastChangeAt = T0 + t;
      }
    }
    for (let i = 1; i < changes.length; i++)
      assert.ok(changes[i]! - changes[i - 1]! >= 10_000, `changes at ${changes.join(', ')}`);
    assert.ok(changes.length >= 2);
  });

  it('scales in only once the scale-down window is all below target', () => {
    const r = new ScaleRecommender();
    const p = policy();
    assert.equal(
      r.decide({ policy: p, current: 4, value: 50, now: T0, lastChangeAt: undefined }).action,
      'hold',
    );
    const early = r.decide({
      policy: p,
      current: 4,
      value: 10,
      now: T0 + 30_000,
      lastChangeAt: undefined,
    });
    assert.equal(early.action, 'hold');
    assert.match(early.reason, /stabilising \(scale-down window\)/);
    const late = r.decide({
      policy: p,
      current: 4,
      value: 10,
      now: T0 + 60_000,
      lastChangeAt: undefined,
    });
    assert.deepEqual(
      [late.action, late.desired],
      ['in', 2],
      'the window holds only the low figure now; step 2',
    );
  });

  it('corrects a count out of bounds at once', () => {
    const r = new ScaleRecommender();
    const v = r.decide({
      policy: policy({ min: 2 }),
      current: 0,
      value: 0,
      now: T0,
      lastChangeAt: T0,
    });
    assert.deepEqual([v.action, v.desired], ['out', 2]);
  });
});

describe('scaling policies', () => {
  it('names the path of every problem', () => {
    assert.deepEqual(checkScalePolicy({ metric: 'cpu', target: 50, max: 4 }), []);
    assert.deepEqual(checkScalePolicy({ metric: 'cpu', target: 50, min: 5, max: 4 }), [
      { path: '$.min', reason: 'must not be above max (5 > 4)' },
    ]);
    assert.deepEqual(
      checkScalePolicy({ metric: 'load', target: 0, max: 4, replicas: 1 }).map((p) => p.path),
      ['$.replicas', '$.metric', '$.target'],
    );
    assert.deepEqual(
      checkScalePolicy({ metric: 'mq-backlog', target: 100, max: 4 }).map((p) => p.path),
      ['$.mq'],
    );
  });
});
