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
