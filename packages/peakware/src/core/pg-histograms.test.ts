import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HISTOGRAM_BUCKETS } from './latency-histogram.js';
import { decodeHistogram, decodeHistogramInto, encodeHistogram } from './pg-histograms.js';

describe('histograms as bytes (rt_hist)', () => {
  it('round-trips sparse pairs in 5 bytes an entry', () => {
    const pairs = [0, 1, 40, 7, 231, 123456];
    const bytes = encodeHistogram(pairs);
    assert.equal(bytes?.length, 15);
    assert.deepEqual(decodeHistogram(bytes), pairs);
    assert.equal(encodeHistogram([]), null);
    assert.equal(encodeHistogram(undefined), null);
    assert.equal(decodeHistogram(null), undefined);
    assert.equal(decodeHistogram(Buffer.alloc(0)), undefined);
  });

  it('decodes concatenated values as their sum (what string_agg of a group gives)', () => {
    const a = encodeHistogram([10, 5, 20, 1])!;
    const b = encodeHistogram([5, 2, 20, 4, 30, 9])!;
    assert.deepEqual(decodeHistogram(Buffer.concat([a, b])), [5, 2, 10, 5, 20, 5, 30, 9]);
    // The scratch counters are clear again: a second decode is not polluted by the first.
    assert.deepEqual(decodeHistogram(a), [10, 5, 20, 1]);
  });

  it('writes a count above 2^32 - 1 as several entries of the same index', () => {
    const big = 2 * 0xffffffff + 5;
    const bytes = encodeHistogram([7, big])!;
    assert.equal(bytes.length, 15);
    assert.deepEqual(decodeHistogram(bytes), [7, big]);
  });

  it('skips an index outside the histogram and a trailing partial entry', () => {
    const good = encodeHistogram([3, 2])!;
    const bad = Buffer.from([HISTOGRAM_BUCKETS, 0, 0, 0, 9]);
    assert.deepEqual(decodeHistogram(Buffer.concat([good, bad, Buffer.from([4, 0])])), [3, 2]);
    const dense = new Float64Array(HISTOGRAM_BUCKETS);
    assert.equal(decodeHistogramInto(dense, Buffer.concat([good, good])), 4);
    assert.equal(dense[3], 4);
  });
});
