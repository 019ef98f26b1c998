/**
 * Test support: a clock the test steps by hand, for code that takes its time from an
 * injected `() => number` (the guard, the auth-failure limiter, the alert logic). Time
 * moves only when the test says so, so limits per second, windows and timeouts are checked
 * exactly instead of against the wall clock.
 */

/** A hand-stepped clock, epoch ms. */
export class FakeClock {
  /** The current time, epoch ms. */
  now: number;

  /** Starts at `start` (default: a whole second, so second-aligned windows start fresh). */
  constructor(start = 1_700_000_000_000) {
    this.now = start;
  }

  /** The clock function to inject. */
  readonly read = (): number => this.now;

  /** Moves time forward by `ms` and returns the new time. */
  advance(ms: number): number {
    this.now += ms;
    return this.now;
  }
}
