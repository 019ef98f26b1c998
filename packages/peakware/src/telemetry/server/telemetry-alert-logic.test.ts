import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../../test/support/fake-clock.js';
import {
  type AlertState,
  burnMeasure,
  burnRate,
  defaultShortWindowSeconds,
  deliveryFor,
  metricsWindow,
  stepAlert,
  thresholdMeasure,
} from './telemetry-alert-logic.js';

/** Evaluates `breaches` one per second from `clock`'s time and lists the events they make. */
function run(
  state: AlertState,
  clock: FakeClock,
  forSeconds: number,
  breaches: boolean[],
): (string | undefined)[] {
  return breaches.map((breach) => {
    const event = stepAlert(state, breach, forSeconds, clock.now);
    clock.advance(1000);
    return event;
  });
}

describe('stepAlert: the for-duration and the fired → resolved transitions', () => {
  it('fires once a breach has lasted forSeconds, once, and resolves on the first clear evaluation', () => {
    const state: AlertState = { firing: false };
    const clock = new FakeClock();
    const start = clock.now;
    // forSeconds 2: breached at 0, 1, 2 s → fires at 2 s (2 s after the breach began).
    assert.deepEqual(run(state, clock, 2, [true, true, true, true, false, false]), [
      undefined,
      undefined,
      'fired',
      undefined,
      'resolved',
      undefined,
    ]);
    assert.deepEqual(state, { firing: false });
    assert.equal(clock.now, start + 6000);
  });

  it('fires on the exact millisecond the for-duration is reached, not one before', () => {
    const state: AlertState = { firing: false };
    const clock = new FakeClock();
    assert.equal(stepAlert(state, true, 1, clock.now), undefined);
    assert.equal(stepAlert(state, true, 1, clock.advance(999)), undefined);
    assert.equal(stepAlert(state, true, 1, clock.advance(1)), 'fired');
  });

  it('fires on the first breached evaluation with a for-duration of 0', () => {
    const state: AlertState = { firing: false };
    assert.equal(stepAlert(state, true, 0, 5_000), 'fired');
    assert.equal(state.firing, true);
    assert.equal(stepAlert(state, true, 0, 6_000), undefined, 'still firing: no second event');
  });

  it('starts the for-duration over when a breach ends before it is reached', () => {
    const state: AlertState = { firing: false };
    const clock = new FakeClock();
    assert.deepEqual(run(state, clock, 2, [true, true, false, true, true, true]), [
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      'fired',
    ]);
  });

  it('resolves a rule that was firing before a restart (state loaded from its last event)', () => {
    const state: AlertState = { firing: true };
    assert.equal(stepAlert(state, true, 60, 1_000), undefined, 'a breach does not fire twice');
    assert.equal(stepAlert(state, false, 60, 2_000), 'resolved');
    assert.equal(stepAlert(state, false, 60, 3_000), undefined);
  });
});

describe('thresholdMeasure (p99 and error-rate)', () => {
  const rule = { threshold: 0.1, minQps: 2, windowSeconds: 10 };

  it('breaches when the value is over the threshold with enough traffic', () => {
    assert.deepEqual(thresholdMeasure(rule, 30, 0.2, { calls: 30 }), {
      breach: true,
      value: 0.2,
      qps: 3,
      details: { calls: 30 },
    });
  });

  it('does not breach at the threshold, below minQps, or without calls', () => {
    assert.equal(thresholdMeasure(rule, 30, 0.1, {}).breach, false, 'equal is not over');
    assert.equal(thresholdMeasure(rule, 19, 0.9, {}).breach, false, '1.9 calls/s < minQps 2');
    assert.equal(thresholdMeasure(rule, 20, 0.9, {}).breach, true, 'exactly minQps counts');
    assert.equal(thresholdMeasure({ ...rule, minQps: 0 }, 0, 1, {}).breach, false, 'no calls');
  });
});

describe('burn rates (SRE multi-window, multi-burn-rate)', () => {
  it('divides the bad-call ratio by the error budget', () => {
    assert.equal(burnRate(0, 1000, 0.999), 0);
    assert.ok(Math.abs(burnRate(1, 1000, 0.999) - 1) < 1e-9, 'spending the budget exactly: 1');
    assert.ok(Math.abs(burnRate(144, 10_000, 0.999) - 14.4) < 1e-9);
    assert.ok(Math.abs(burnRate(1, 3, 0.99) - 100 / 3) < 1e-9);
    assert.equal(burnRate(5, 0, 0.999), 0, 'no calls, no burn');
  });

  it('gives a short window 1/12 of the long one by default, at least 1 s', () => {
    assert.equal(defaultShortWindowSeconds(3600), 300);
    assert.equal(defaultShortWindowSeconds(60), 5);
    assert.equal(defaultShortWindowSeconds(8), 1);
  });

  const rule = { threshold: 14.4, minQps: 0, windowSeconds: 3600, objective: 0.999 };

  it('breaches only when the long and the short window both burn too fast', () => {
    const both = burnMeasure(rule, { calls: 36_000, bad: 720, shortCalls: 3000, shortBad: 60 });
    assert.equal(both.breach, true);
    assert.ok(Math.abs(both.value - 20) < 1e-9, 'the value is the long window burn rate');
    assert.equal(both.qps, 10);
    assert.deepEqual(both.details, {
      longBurnRate: both.value,
      shortBurnRate: both.details.shortBurnRate,
      calls: 36_000,
      shortCalls: 3000,
      objective: 0.999,
      source: 'spans',
    });
    assert.ok(Math.abs((both.details.shortBurnRate as number) - 20) < 1e-9);
    // An old incident: the long window still burns, the short one has recovered.
    assert.equal(
      burnMeasure(rule, { calls: 36_000, bad: 720, shortCalls: 3000, shortBad: 0 }).breach,
      false,
    );
    // A fresh blip: the short window burns, the long one not yet.
    assert.equal(
      burnMeasure(rule, { calls: 36_000, bad: 100, shortCalls: 3000, shortBad: 60 }).breach,
      false,
    );
  });

  it('needs calls in both windows and minQps over the long one; defaults the objective', () => {
    assert.equal(
      burnMeasure(rule, { calls: 100, bad: 100, shortCalls: 0, shortBad: 0 }).breach,
      false,
    );
    assert.equal(
      burnMeasure({ ...rule, minQps: 1 }, { calls: 3599, bad: 3599, shortCalls: 10, shortBad: 10 })
        .breach,
      false,
    );
    const metrics = burnMeasure(
      { threshold: 1, minQps: 0, windowSeconds: 60, resource: 'wallet.pay' },
      { calls: 1000, bad: 2, shortCalls: 100, shortBad: 1 },
    );
    // Objective 0.999 by default: 2/1000 over a 0.001 budget burns at 2, 1/100 at 10.
    assert.ok(Math.abs(metrics.value - 2) < 1e-9);
    assert.equal(metrics.breach, true);
    assert.equal(metrics.details.source, 'metrics');
  });
});

describe('metricsWindow', () => {
  it('ends at the start of the last whole second and reaches back the window from there', () => {
    const now = 1_700_000_012_345;
    assert.deepEqual(metricsWindow(now, 60, 5), {
      until: 1_700_000_011_000,
      from: 1_700_000_011_000 - 60_000,
      shortFrom: 1_700_000_011_000 - 5_000,
    });
    assert.equal(metricsWindow(1_700_000_012_000, 1, 1).until, 1_700_000_011_000);
  });
});

describe('deliveryFor: webhooks and silences', () => {
  const now = Date.parse('2026-12-04T10:00:00.000Z');

  it('sends to the webhook, says none without one', () => {
    assert.equal(deliveryFor({ webhook: 'http://hooks/a' }, now), 'pending');
    assert.equal(deliveryFor({}, now), 'none');
    assert.equal(deliveryFor({ silencedUntil: '2026-12-04T11:00:00.000Z' }, now), 'none');
  });

  it('silences until the silence ends, to the millisecond', () => {
    const rule = { webhook: 'http://hooks/a', silencedUntil: '2026-12-04T10:05:00.000Z' };
    assert.equal(deliveryFor(rule, now), 'silenced');
    assert.equal(deliveryFor(rule, Date.parse('2026-12-04T10:04:59.999Z')), 'silenced');
    assert.equal(deliveryFor(rule, Date.parse('2026-12-04T10:05:00.000Z')), 'pending');
  });
});
