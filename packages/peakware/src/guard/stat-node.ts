/**
 * The statistics of one resource (or one origin or entrance of it): a second window
 * (1000 ms, 2 buckets) that rules read, a minute window (60 000 ms, 60 buckets) that
 * per-second metrics are cut from, and the number of calls in flight. Built on core's
 * SlidingWindow, like Sentinel's StatisticNode on LeapArray.
 *
 * Passes and blocks, the two counts on every entry, are written back in batches: they
 * gather in plain fields for the current 500 ms bucket and go into both windows (with the
 * windows' clock pinned to that bucket, so they land where they belong) when the bucket
 * changes or before anything reads the windows. `passQps()` is then the pass count of the
 * rest of the window, fixed for the bucket's lifetime, plus the pending count: no window
 * walk per call. Completions (RT, success, error) are written straight through.
 */
import { HistogramRing } from '../core/latency-histogram.js';
import { SlidingWindow } from '../core/sliding-window.js';
import { coarseNow } from './coarse-clock.js';

const BUCKET_MS = 500;

/** Counters for one resource, origin or entrance. */
export class StatNode {
  /** The 1 s window (2 buckets of 500 ms) rules read. Call {@link flush} before reading pass/block. */
  readonly second: SlidingWindow;
  /** The 60 s window (1 s buckets) metrics come from. Call {@link flush} before reading pass/block. */
  readonly minute: SlidingWindow;
  /**
   * RT histograms of the newest seconds, shipped with the per-second metrics so the control
   * plane can merge percentiles over instances and seconds; only on nodes whose metrics are
   * shipped (resources and the inbound node), not per origin or entrance.
   */
  readonly rtHistograms: HistogramRing | undefined;
  /** Calls admitted and not yet exited. */
  concurrency = 0;
  readonly #clock: () => number;
  /** While flushing: the time the windows see (the pending bucket's start); else -1. */
  #pinned = -1;
  #pendingStart = Number.NEGATIVE_INFINITY;
  #pendingEnd = Number.NEGATIVE_INFINITY;
  #pendingPass = 0;
  #pendingBlock = 0;
  /** Passes in the second window outside the pending counts, valid for the pending bucket. */
  #basePass = 0;

  constructor(clock?: () => number, rtHistograms = false) {
    this.#clock = clock ?? coarseNow;
    this.rtHistograms = rtHistograms ? new HistogramRing() : undefined;
    const windowClock = () => (this.#pinned >= 0 ? this.#pinned : this.#clock());
    this.second = new SlidingWindow({
      intervalMs: 1000,
      buckets: 2,
      histogram: false,
      clock: windowClock,
    });
    this.minute = new SlidingWindow({
      intervalMs: 60_000,
      buckets: 60,
      histogram: false,
      clock: windowClock,
    });
  }

  /**
   * Makes the pending bucket the one holding `now`, writing back the previous one. Time only
   * moves the pending bucket forward: a `now` from before it (a clock stepped back) counts
   * in the pending bucket, as core's SlidingWindow does, so no pass is ever forgotten.
   */
  #roll(now: number): void {
    this.flush();
    const start = now - (now % BUCKET_MS);
    this.#pendingStart = start;
    this.#pendingEnd = start + BUCKET_MS;
    this.#basePass = this.second.pass();
  }

  /** Writes the pending passes and blocks into both windows. */
  flush(): void {
    const pass = this.#pendingPass;
    const block = this.#pendingBlock;
    if (pass === 0 && block === 0) return;
    this.#pendingPass = 0;
    this.#pendingBlock = 0;
    this.#pinned = this.#pendingStart;
    try {
      if (pass > 0) {
        this.second.addPass(pass);
        this.minute.addPass(pass);
      }
      if (block > 0) {
        this.second.addBlock(block);
        this.minute.addBlock(block);
      }
    } finally {
      this.#pinned = -1;
    }
    this.#basePass += pass;
  }

  /** Admitted calls over the last second (`now` saves a clock read when the caller has it). */
  passQps(now = this.#clock()): number {
    if (now >= this.#pendingEnd) this.#roll(now);
    return this.#basePass + this.#pendingPass;
  }

  /** Admitted calls in the last complete one-second bucket (warm-up's "previous QPS"). */
  previousPassQps(): number {
    this.flush();
    return this.minute.previous()?.pass ?? 0;
  }

  /** Largest per-second success rate seen in the second window (BBR). */
  maxSuccessQps(): number {
    return this.second.maxBucket('success') * this.second.bucketCount;
  }

  /** Counts an admitted call. */
  addPass(now = this.#clock()): void {
    if (now >= this.#pendingEnd) this.#roll(now);
    this.#pendingPass++;
    this.concurrency++;
  }

  /** Counts a refused call. */
  addBlock(now = this.#clock()): void {
    if (now >= this.#pendingEnd) this.#roll(now);
    this.#pendingBlock++;
  }

  /** Counts a finished call. */
  addComplete(rtMs: number, failed: boolean, now = this.#clock()): void {
    // Pending counts go in first: a window slot must never hold a newer bucket than they do.
    if (now >= this.#pendingEnd) this.#roll(now);
    // The windows see the caller's `now` instead of reading the clock again.
    this.#pinned = now;
    this.second.addComplete(rtMs, failed);
    this.minute.addComplete(rtMs, failed);
    this.#pinned = -1;
    this.rtHistograms?.record(now, rtMs);
    this.concurrency--;
  }
}
