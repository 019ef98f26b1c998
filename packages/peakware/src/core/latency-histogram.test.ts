import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  HISTOGRAM_BUCKETS,
  HistogramRing,
  histogramIndex,
  histogramValue,
  LatencyHistogram,
  mergeSparseHistograms,
  sparseHistogram,
  sparseHistogramProblem,
  sparseQuantile,
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

  it('travels sparse and merges to the percentiles of every sample', () => {
    const fast = new LatencyHistogram();
    const slow = new LatencyHistogram();
    for (let i = 0; i < 2000; i++) fast.record(2);
    for (let i = 0; i < 10; i++) slow.record(100);
    const a = sparseHistogram(fast.counts);
    const b = sparseHistogram(slow.counts);
    assert.deepEqual(a, [histogramIndex(2), 2000]);
    assert.equal(sparseHistogramProblem(a), undefined);
    const merged = mergeSparseHistograms([a, undefined, b]);
    // The slow instance's own p99 is 100 ms; of all 2 010 calls it is 2 ms.
    assert.ok(Math.abs(sparseQuantile(b, 0.99) - 100) < 7);
    assert.ok(Math.abs(sparseQuantile(merged, 0.99) - 2) < 0.2);
    assert.ok(Math.abs(sparseQuantile(merged, 0.999) - 100) < 7);
    assert.ok(Number.isNaN(sparseQuantile([], 0.5)));
    assert.deepEqual(mergeSparseHistograms([undefined, []]), []);
  });

  it('names what is wrong with a sparse histogram', () => {
    assert.match(sparseHistogramProblem([1]) ?? '', /odd number/);
    assert.match(sparseHistogramProblem([5, 1, 5, 1]) ?? '', /index 5 at position 2/);
    assert.match(
      sparseHistogramProblem([HISTOGRAM_BUCKETS, 1]) ?? '',
      /not an ascending bucket index/,
    );
    assert.match(sparseHistogramProblem([3, 0]) ?? '', /count 0 at position 1/);
    assert.match(sparseHistogramProblem([3, 1.5]) ?? '', /not a positive integer/);
  });

  it('keeps the newest buckets in a ring', () => {
    const ring = new HistogramRing(2, 1000);
    assert.equal(ring.sparse(0), undefined, 'nothing before the first record');
    ring.record(1000, 5);
    ring.record(1999, 5);
    ring.record(2000, 7);
    assert.deepEqual(ring.sparse(1000), [histogramIndex(5), 2]);
    assert.deepEqual(ring.sparse(2000), [histogramIndex(7), 1]);
    ring.record(3500, 9); // reuses second 1000's slot
    assert.equal(ring.sparse(1000), undefined);
    assert.deepEqual(ring.sparse(3000), [histogramIndex(9), 1]);
    ring.record(1200, 9); // older than the ring: dropped, the newer bucket kept
    assert.deepEqual(ring.sparse(3000), [histogramIndex(9), 1]);
  });
});
