/**
 * The statistics of one resource (or one origin or entrance of it): a second window
 * (1000 ms, 2 buckets) that rules read, a minute window (60 000 ms, 60 buckets) that
 * per-second metrics are cut from, and the number of calls in flight. Built on core's
 * SlidingWindow, like Sentinel's StatisticNode on LeapArray.
 */
import { SlidingWindow } from '../core/sliding-window.js';
import { coarseNow } from './coarse-clock.js';

/** Counters for one resource, origin or entrance. */
export class StatNode {
  /** The 1 s window (2 buckets of 500 ms) rules read. */
  readonly second: SlidingWindow;
  /** The 60 s window (1 s buckets) per-second metrics come from. */
  readonly minute: SlidingWindow;
  /** Calls admitted and not yet exited. */
  concurrency = 0;

  constructor(clock?: () => number) {
    const c = { clock: clock ?? coarseNow };
    this.second = new SlidingWindow({ intervalMs: 1000, buckets: 2, histogram: false, ...c });
    this.minute = new SlidingWindow({ intervalMs: 60_000, buckets: 60, histogram: false, ...c });
  }

  /** Admitted calls per second over the last second. */
  passQps(): number {
    return this.second.pass();
  }

  /** Admitted calls in the last complete one-second bucket (warm-up's "previous QPS"). */
  previousPassQps(): number {
    return this.minute.previous()?.pass ?? 0;
  }

  /** Largest per-second success rate seen in the second window (BBR). */
  maxSuccessQps(): number {
    return this.second.maxBucket('success') * this.second.bucketCount;
  }

  /** Counts an admitted call. */
  addPass(): void {
    this.second.addPass();
    this.minute.addPass();
    this.concurrency++;
  }

  /** Counts a refused call. */
  addBlock(): void {
    this.second.addBlock();
    this.minute.addBlock();
  }

  /** Counts a finished call. */
  addComplete(rtMs: number, failed: boolean): void {
    this.second.addComplete(rtMs, failed);
    this.minute.addComplete(rtMs, failed);
    this.concurrency--;
  }
}
