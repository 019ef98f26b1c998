/**
 * The sliding-window statistics primitive shared by guard, telemetry and the console: a
 * ring of time buckets in the style of Sentinel's LeapArray. A window of `intervalMs` is
 * cut into `buckets` equal buckets; a record lands in the bucket of the current time,
 * reusing (and resetting) the slot of a bucket that has slid out of the window. Reads sum
 * the buckets still inside the window.
 *
 * Counters live in one Float64Array and histograms in one Uint32Array, so recording is a
 * few array writes with no allocation. Single-threaded by design (one event loop).
 */
import { InvalidArgumentError } from './errors.js';
import {
  HISTOGRAM_BUCKETS,
  histogramIndex,
  histogramQuantile,
  sparseHistogram,
} from './latency-histogram.js';

/** The counters kept per bucket. */
export const WindowField = {
  /** Requests admitted. */
  pass: 0,
  /** Requests refused (by a guard rule). */
  block: 1,
  /** Requests that completed without error. */
  success: 2,
  /** Requests that completed with an error. */
  error: 3,
  /** Sum of response times (ms) of completed requests. */
  rtSum: 4,
  /** Smallest response time (ms) of a completed request; `Infinity` when none. */
  rtMin: 5,
} as const;

/** The name of one per-bucket counter. */
export type WindowFieldName = keyof typeof WindowField;

const FIELDS = 6;

/** Options for {@link SlidingWindow}. */
export interface SlidingWindowOptions {
  /** Length of the whole window in ms. Default 1000 (Sentinel's second window). */
  intervalMs?: number;
  /** Number of buckets the window is cut into. Default 2 (500 ms each). */
  buckets?: number;
  /** Keep a latency histogram per bucket, for percentiles. Default true. */
  histogram?: boolean;
  /** The clock, epoch ms. Default `Date.now`; tests pass a fake one. */
  clock?: () => number;
}

/** The counters of one bucket, as read by {@link SlidingWindow.snapshots}. */
export interface BucketSnapshot {
  /** Start of the bucket, epoch ms. */
  start: number;
  pass: number;
  block: number;
  success: number;
  error: number;
  rtSum: number;
  /** Smallest response time, or `NaN` when nothing completed. */
  rtMin: number;
}

/** A ring of time buckets counting pass / block / success / error, RT sum and min, latency. */
export class SlidingWindow {
  /** Length of the whole window in ms. */
  readonly intervalMs: number;
  /** Number of buckets. */
  readonly bucketCount: number;
  /** Length of one bucket in ms. */
  readonly bucketMs: number;
  readonly #clock: () => number;
  readonly #starts: Float64Array;
  readonly #counters: Float64Array;
  readonly #histograms: Uint32Array | undefined;

  constructor(options: SlidingWindowOptions = {}) {
    const intervalMs = options.intervalMs ?? 1000;
    const buckets = options.buckets ?? 2;
    if (!Number.isInteger(buckets) || buckets < 1) {
      throw new InvalidArgumentError(
        `sliding window: buckets must be a positive integer, got ${buckets}`,
        { details: { input: 'buckets' } },
      );
    }
    if (!Number.isInteger(intervalMs) || intervalMs <= 0 || intervalMs % buckets !== 0) {
      throw new InvalidArgumentError(
        `sliding window: intervalMs must be a positive integer multiple of buckets (${buckets}), got ${intervalMs}`,
        { details: { input: 'intervalMs' } },
      );
    }
    this.intervalMs = intervalMs;
    this.bucketCount = buckets;
    this.bucketMs = intervalMs / buckets;
    this.#clock = options.clock ?? Date.now;
    this.#starts = new Float64Array(buckets).fill(-1);
    this.#counters = new Float64Array(buckets * FIELDS);
    this.#histograms =
      options.histogram === false ? undefined : new Uint32Array(buckets * HISTOGRAM_BUCKETS);
  }

  // The bucket records are landing in now: most records fall in it, so they skip the math.
  #currentStart = -1;
  #currentEnd = -1;
  #currentSlot = 0;

  /** The slot of the bucket holding time `now`, reset first if it held an older bucket. */
  #slot(now: number): number {
    if (now >= this.#currentStart && now < this.#currentEnd) return this.#currentSlot;
    const bucketMs = this.bucketMs;
    const index = Math.floor(now / bucketMs);
    const slot = index % this.bucketCount;
    const start = index * bucketMs;
    const held = this.#starts[slot]!;
    if (held !== start && held < start) {
      // The slot holds a bucket that slid out of the window: reuse it.
      this.#starts[slot] = start;
      const base = slot * FIELDS;
      const c = this.#counters;
      c[base] = 0;
      c[base + 1] = 0;
      c[base + 2] = 0;
      c[base + 3] = 0;
      c[base + 4] = 0;
      c[base + 5] = Number.POSITIVE_INFINITY;
      this.#histograms?.fill(0, slot * HISTOGRAM_BUCKETS, (slot + 1) * HISTOGRAM_BUCKETS);
    }
    // If the clock stepped back into an older bucket, the record counts in the current slot:
    // a small misattribution beats losing it.
    if (this.#starts[slot] === start) {
      this.#currentStart = start;
      this.#currentEnd = start + bucketMs;
      this.#currentSlot = slot;
    }
    return slot;
  }

  /** Counts `n` admitted requests. */
  addPass(n = 1): void {
    this.#counters[this.#slot(this.#clock()) * FIELDS]! += n;
  }

  /** Counts `n` refused requests. */
  addBlock(n = 1): void {
    this.#counters[this.#slot(this.#clock()) * FIELDS + 1]! += n;
  }

  /**
   * Counts one completed request that took `rtMs`, as a success or (with `failed`) an
   * error; its response time goes into the RT sum, min and histogram either way.
   */
  addComplete(rtMs: number, failed = false): void {
    const slot = this.#slot(this.#clock());
    const c = this.#counters;
    const base = slot * FIELDS;
    c[base + (failed ? 3 : 2)]! += 1;
    c[base + 4]! += rtMs;
    if (rtMs < c[base + 5]!) c[base + 5] = rtMs;
    const h = this.#histograms;
    if (h !== undefined) h[slot * HISTOGRAM_BUCKETS + histogramIndex(rtMs)]! += 1;
  }

  /** True when bucket `slot` lies inside the window ending at `now`. */
  #live(slot: number, now: number): boolean {
    const start = this.#starts[slot]!;
    return start >= 0 && now - start < this.intervalMs && start <= now;
  }

  /** Sum of one counter over the window (for `rtMin`, the minimum; `NaN` if none). */
  sum(field: WindowFieldName): number {
    const now = this.#clock();
    const offset = WindowField[field];
    const c = this.#counters;
    if (offset === WindowField.rtMin) {
      let min = Number.POSITIVE_INFINITY;
      for (let s = 0; s < this.bucketCount; s++) {
        if (this.#live(s, now) && c[s * FIELDS + offset]! < min) min = c[s * FIELDS + offset]!;
      }
      return min === Number.POSITIVE_INFINITY ? Number.NaN : min;
    }
    let total = 0;
    for (let s = 0; s < this.bucketCount; s++) {
      if (this.#live(s, now)) total += c[s * FIELDS + offset]!;
    }
    return total;
  }

  /** Admitted requests in the window. */
  pass(): number {
    return this.sum('pass');
  }

  /** Refused requests in the window. */
  block(): number {
    return this.sum('block');
  }

  /** Requests completed without error in the window. */
  success(): number {
    return this.sum('success');
  }

  /** Requests completed with an error in the window. */
  error(): number {
    return this.sum('error');
  }

  /** Requests completed (success + error) in the window. */
  completed(): number {
    return this.sum('success') + this.sum('error');
  }

  /** Per-second rate of a counter over the window. */
  rate(field: WindowFieldName): number {
    return this.sum(field) / (this.intervalMs / 1000);
  }

  /** Mean response time (ms) of requests completed in the window; `NaN` when none. */
  rtAvg(): number {
    const done = this.completed();
    return done === 0 ? Number.NaN : this.sum('rtSum') / done;
  }

  /** Smallest response time (ms) in the window; `NaN` when none. */
  rtMin(): number {
    return this.sum('rtMin');
  }

  /** The largest value of one counter in any single live bucket (e.g. peak success). */
  maxBucket(field: WindowFieldName): number {
    const now = this.#clock();
    const offset = WindowField[field];
    let max = 0;
    for (let s = 0; s < this.bucketCount; s++) {
      if (this.#live(s, now) && this.#counters[s * FIELDS + offset]! > max) {
        max = this.#counters[s * FIELDS + offset]!;
      }
    }
    return max;
  }

  /**
   * The response time (ms) at quantile `q` (0..1) of requests completed in the window, from
   * the merged bucket histograms (within about 6%); `NaN` when none or histograms are off.
   */
  percentile(q: number): number {
    const h = this.#histograms;
    if (h === undefined) return Number.NaN;
    const now = this.#clock();
    const merged = new Float64Array(HISTOGRAM_BUCKETS);
    let total = 0;
    for (let s = 0; s < this.bucketCount; s++) {
      if (!this.#live(s, now)) continue;
      const base = s * HISTOGRAM_BUCKETS;
      for (let i = 0; i < HISTOGRAM_BUCKETS; i++) merged[i]! += h[base + i]!;
      total += this.#counters[s * FIELDS + 2]! + this.#counters[s * FIELDS + 3]!;
    }
    return histogramQuantile(merged, q, 0, total);
  }

  /**
   * The latency histogram of the live bucket starting at `start`, as sparse
   * `[index, count, …]` pairs (`sparseHistogram`); undefined when histograms are off or the
   * bucket is not in the window.
   */
  bucketHistogram(start: number): number[] | undefined {
    const h = this.#histograms;
    if (h === undefined) return undefined;
    const now = this.#clock();
    for (let s = 0; s < this.bucketCount; s++)
      if (this.#starts[s] === start && this.#live(s, now))
        return sparseHistogram(h, s * HISTOGRAM_BUCKETS);
    return undefined;
  }

  /**
   * The live buckets, oldest first. With `completeOnly`, the bucket still being filled is
   * left out: what a per-second exporter ships.
   */
  snapshots(completeOnly = false): BucketSnapshot[] {
    const now = this.#clock();
    const current = Math.floor(now / this.bucketMs) * this.bucketMs;
    const out: BucketSnapshot[] = [];
    for (let s = 0; s < this.bucketCount; s++) {
      if (!this.#live(s, now)) continue;
      const start = this.#starts[s]!;
      if (completeOnly && start === current) continue;
      const c = this.#counters;
      const b = s * FIELDS;
      out.push({
        start,
        pass: c[b]!,
        block: c[b + 1]!,
        success: c[b + 2]!,
        error: c[b + 3]!,
        rtSum: c[b + 4]!,
        rtMin: c[b + 5] === Number.POSITIVE_INFINITY ? Number.NaN : c[b + 5]!,
      });
    }
    return out.sort((a, b) => a.start - b.start);
  }

  /**
   * The counters of the bucket that ended just before the current one (Sentinel's
   * "previous window", used by warm-up); undefined when it is not in the ring.
   */
  previous(): BucketSnapshot | undefined {
    const now = this.#clock();
    const start = (Math.floor(now / this.bucketMs) - 1) * this.bucketMs;
    return this.snapshots().find((b) => b.start === start);
  }
}
