/**
 * A log-linear latency histogram over microseconds: exact below 16 µs, then 8 sub-buckets
 * per power of two (at most 12.5% bucket width, so a reported percentile is within about
 * 6% of the true value), up to about 35 minutes in 232 counters. Fixed size, no
 * allocation per record, mergeable by adding counters: the shape the sliding window keeps
 * per bucket and telemetry merges across buckets and instances.
 */

const SUB_BITS = 3;
const SUB = 1 << SUB_BITS; // sub-buckets per power of two
const LINEAR = SUB * 2; // values below this are their own bucket
const MAX_VALUE_US = 0x7fffffff;

/** Number of counters in one histogram. */
export const HISTOGRAM_BUCKETS = LINEAR + (31 - (SUB_BITS + 1)) * SUB;

/** The counter index for a latency in milliseconds (negative values count as 0). */
export function histogramIndex(latencyMs: number): number {
  let us = Math.round(latencyMs * 1000);
  if (!(us > 0)) return 0;
  if (us > MAX_VALUE_US) us = MAX_VALUE_US;
  if (us < LINEAR) return us;
  const exponent = 31 - Math.clz32(us);
  const mantissa = (us >>> (exponent - SUB_BITS)) & (SUB - 1);
  return LINEAR + (exponent - SUB_BITS - 1) * SUB + mantissa;
}

/** The latency in milliseconds that bucket `index` reports: the middle of its range. */
export function histogramValue(index: number): number {
  if (index < LINEAR) return index / 1000;
  const exponent = SUB_BITS + 1 + Math.floor((index - LINEAR) / SUB);
  const mantissa = (index - LINEAR) % SUB;
  const shift = exponent - SUB_BITS;
  const lower = (SUB + mantissa) * 2 ** shift;
  const width = 2 ** shift;
  return (lower + (width - 1) / 2) / 1000;
}

/**
 * The latency (ms) at quantile `q` (0..1) of `count` samples held in
 * `counts[offset .. offset + HISTOGRAM_BUCKETS)`; `NaN` when there are no samples.
 */
export function histogramQuantile(
  counts: ArrayLike<number>,
  q: number,
  offset = 0,
  count?: number,
): number {
  let total = count;
  if (total === undefined) {
    total = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) total += counts[offset + i] ?? 0;
  }
  if (total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * total));
  let seen = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    seen += counts[offset + i] ?? 0;
    if (seen >= rank) return histogramValue(i);
  }
  return histogramValue(HISTOGRAM_BUCKETS - 1);
}

/**
 * The non-zero counters of `counts[offset .. offset + HISTOGRAM_BUCKETS)` as flat
 * `[index, count, index, count, …]` pairs, indexes ascending: how a histogram travels
 * (a second of one resource fills a few dozen of the 232 counters).
 */
export function sparseHistogram(counts: ArrayLike<number>, offset = 0): number[] {
  const out: number[] = [];
  for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
    const c = counts[offset + i] ?? 0;
    if (c > 0) out.push(i, c);
  }
  return out;
}

/**
 * Why `pairs` is not a sparse histogram (odd length, an index outside 0..231 or not
 * ascending, a count that is not a positive integer), or undefined when it is one.
 */
export function sparseHistogramProblem(pairs: readonly number[]): string | undefined {
  if (pairs.length % 2 !== 0) return 'has an odd number of entries (expected [index, count] pairs)';
  let last = -1;
  for (let k = 0; k < pairs.length; k += 2) {
    const i = pairs[k]!;
    const c = pairs[k + 1]!;
    if (!Number.isInteger(i) || i <= last || i >= HISTOGRAM_BUCKETS)
      return `index ${i} at position ${k} is not an ascending bucket index in 0..${HISTOGRAM_BUCKETS - 1}`;
    if (!Number.isInteger(c) || c <= 0)
      return `count ${c} at position ${k + 1} is not a positive integer`;
    last = i;
  }
  return undefined;
}

/** Adds sparse `pairs` into `into` (a dense histogram); returns the samples added. */
export function addSparseHistogram(
  into: Float64Array | Uint32Array,
  pairs: readonly number[],
): number {
  let n = 0;
  for (let k = 0; k + 1 < pairs.length; k += 2) {
    const c = pairs[k + 1]!;
    into[pairs[k]!]! += c;
    n += c;
  }
  return n;
}

/** The latency (ms) at quantile `q` (0..1) of sparse `[index, count, …]` pairs; `NaN` when empty. */
export function sparseQuantile(pairs: readonly number[], q: number): number {
  let total = 0;
  for (let k = 1; k < pairs.length; k += 2) total += pairs[k]!;
  if (total === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil(Math.min(1, Math.max(0, q)) * total));
  let seen = 0;
  for (let k = 0; k + 1 < pairs.length; k += 2) {
    seen += pairs[k + 1]!;
    if (seen >= rank) return histogramValue(pairs[k]!);
  }
  return histogramValue(pairs[pairs.length - 2]!);
}

/** Sparse pairs of several histograms added into one (indexes ascending). */
export function mergeSparseHistograms(all: Iterable<readonly number[] | undefined>): number[] {
  const dense = new Float64Array(HISTOGRAM_BUCKETS);
  let any = false;
  for (const pairs of all) {
    if (pairs === undefined || pairs.length === 0) continue;
    addSparseHistogram(dense, pairs);
    any = true;
  }
  return any ? sparseHistogram(dense) : [];
}

/**
 * Latency histograms of the newest few time buckets (default 4 of 1 s), allocated on the
 * first record: what a per-second exporter ships beside its counters, at 3.7 KB a
 * resource instead of a histogram for every bucket of a minute window.
 */
export class HistogramRing {
  readonly #bucketMs: number;
  readonly #starts: Float64Array;
  #counts: Uint32Array | undefined;
  /** The newest bucket's bounds and offset in `#counts`: most records land there. */
  #currentStart = Number.NEGATIVE_INFINITY;
  #currentEnd = Number.NEGATIVE_INFINITY;
  #currentBase = 0;

  constructor(slots = 4, bucketMs = 1000) {
    this.#bucketMs = bucketMs;
    this.#starts = new Float64Array(Math.max(1, slots)).fill(-1);
  }

  /** Counts one latency in the bucket holding `now` (epoch ms); a bucket older than the ring is dropped. */
  record(now: number, latencyMs: number): void {
    if (now >= this.#currentStart && now < this.#currentEnd) {
      this.#counts![this.#currentBase + histogramIndex(latencyMs)]! += 1;
      return;
    }
    const index = Math.floor(now / this.#bucketMs);
    const start = index * this.#bucketMs;
    const slot = index % this.#starts.length;
    if (this.#counts === undefined)
      this.#counts = new Uint32Array(this.#starts.length * HISTOGRAM_BUCKETS);
    const counts = this.#counts;
    const held = this.#starts[slot]!;
    if (held !== start) {
      // A clock stepped back past the ring: not worth overwriting a newer bucket for.
      if (held > start) return;
      this.#starts[slot] = start;
      counts.fill(0, slot * HISTOGRAM_BUCKETS, (slot + 1) * HISTOGRAM_BUCKETS);
    }
    if (start >= this.#currentStart) {
      this.#currentStart = start;
      this.#currentEnd = start + this.#bucketMs;
      this.#currentBase = slot * HISTOGRAM_BUCKETS;
    }
    counts[slot * HISTOGRAM_BUCKETS + histogramIndex(latencyMs)]! += 1;
  }

  /** The bucket starting at `start` as sparse pairs; undefined when the ring no longer holds it. */
  sparse(start: number): number[] | undefined {
    const counts = this.#counts;
    if (counts === undefined) return undefined;
    const slot = Math.floor(start / this.#bucketMs) % this.#starts.length;
    if (this.#starts[slot] !== start) return undefined;
    return sparseHistogram(counts, slot * HISTOGRAM_BUCKETS);
  }
}

/** A standalone histogram: record latencies, read quantiles, merge with others. */
export class LatencyHistogram {
  /** The raw counters; exposed so histograms can be shipped and merged. */
  readonly counts = new Uint32Array(HISTOGRAM_BUCKETS);
  #total = 0;

  /** Counts one sample of `latencyMs` (or `n` of them). */
  record(latencyMs: number, n = 1): void {
    const i = histogramIndex(latencyMs);
    this.counts[i] = (this.counts[i] ?? 0) + n;
    this.#total += n;
  }

  /** Adds another histogram's counters into this one. */
  merge(other: { readonly counts: ArrayLike<number> }): void {
    for (let i = 0; i < HISTOGRAM_BUCKETS; i++) {
      const c = other.counts[i] ?? 0;
      this.counts[i] = (this.counts[i] ?? 0) + c;
      this.#total += c;
    }
  }

  /** Number of samples recorded. */
  get total(): number {
    return this.#total;
  }

  /** The latency (ms) at quantile `q` (0..1); `NaN` when empty. */
  quantile(q: number): number {
    return histogramQuantile(this.counts, q, 0, this.#total);
  }

  /** Forgets every sample. */
  reset(): void {
    this.counts.fill(0);
    this.#total = 0;
  }
}
