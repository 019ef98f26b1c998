import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HISTOGRAM_BUCKETS,
  histogramIndex,
  histogramValue,
  LatencyHistogram,
} from './latency-histogram.js';

describe('latency histogram', () => {
  it('maps values to increasing buckets within range', () => {
    let last = -1;
    for (let us = 0; us < 5_000_000; us = Math.floor(us * 1.01) + 1) {
      const index = histogramIndex(us / 1000);
      assert.ok(index >= last, `monotonic at ${us}`);
      assert.ok(index < HISTOGRAM_BUCKETS);
      last = index;
    }
    assert.equal(histogramIndex(-3), 0);
    assert.equal(histogramIndex(Number.NaN), 0);
    assert.equal(histogramIndex(1e12), HISTOGRAM_BUCKETS - 1);
  });

  it('reports each value within 7% of itself', () => {
    for (const ms of [0.005, 0.02, 0.5, 1, 3.3, 17, 120, 999, 31_000]) {
      const reported = histogramValue(histogramIndex(ms));
      assert.ok(Math.abs(reported - ms) / ms <= 0.07, `${ms} ms reported as ${reported}`);
    }
  });

  it('computes quantiles of a known distribution', () => {
    const h = new LatencyHistogram();
    for (let i = 1; i <= 1000; i++) h.record(i); // 1..1000 ms, uniform
    assert.equal(h.total, 1000);
    for (const [q, expected] of [
      [0.5, 500],
      [0.9, 900],
      [0.99, 990],
    ] as const) {
      const got = h.quantile(q);
      assert.ok(Math.abs(got - expected) / expected < 0.07, `p${q * 100} = ${got}`);
    }
    assert.ok(Number.isNaN(new LatencyHistogram().quantile(0.5)));
  });

  it('merges counters', () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    for (let i = 0; i < 90; i++) a.record(1);
    for (let i = 0; i < 10; i++) b.record(100);
    a.merge(b);
    assert.equal(a.total, 100);
    assert.ok(a.quantile(0.5) < 1.1);
    assert.ok(a.quantile(0.95) > 90);
  });
});
