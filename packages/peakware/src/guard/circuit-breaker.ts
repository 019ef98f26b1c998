/**
 * Circuit breakers (Sentinel's ResponseTimeCircuitBreaker and ExceptionCircuitBreaker in
 * one class) and the degrade slot that runs them. A breaker counts good and bad calls over
 * `statIntervalMs`; past the threshold (with at least `minRequestAmount` calls) it opens and
 * refuses every call for `recoveryTimeoutMs`; then it lets exactly one probe call through
 * (half-open): a good probe closes it, a bad one opens it again.
 */
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import type { ProcessorSlot } from './processor-slot.js';
import type { ResolvedDegradeRule } from './rule-types.js';

/** A breaker's state. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** A state change, as emitted by the guard's `breaker` event. */
export interface BreakerStateChange {
  resource: string;
  rule: ResolvedDegradeRule;
  from: BreakerState;
  to: BreakerState;
  /** When, epoch ms. */
  at: number;
  /** The slow/error ratio or error count that tripped it (transitions to open from closed). */
  value?: number;
}

/** One breaker for one degrade rule. */
export class CircuitBreaker {
  #state: BreakerState = 'closed';
  #nextRetryAt = 0;
  #probe: Entry | undefined;
  #probeAt = 0;
  // One bucket of statIntervalMs, as in Sentinel: good and bad calls in the current interval.
  #statStart = 0;
  #good = 0;
  #bad = 0;

  constructor(
    readonly rule: ResolvedDegradeRule,
    readonly onChange: (change: BreakerStateChange) => void,
  ) {}

  /** The state now. */
  get state(): BreakerState {
    return this.#state;
  }

  /** True when `entry` may pass; in open state past the recovery time it becomes the probe. */
  tryPass(entry: Entry, now: number): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (now < this.#nextRetryAt) return false;
      this.#transition('half-open', now);
      this.#takeProbe(entry, now);
      return true;
    }
    // Half-open: one probe at a time; a probe that never reported back is replaced.
    if (now - this.#probeAt >= this.rule.recoveryTimeoutMs) {
      this.#takeProbe(entry, now);
      return true;
    }
    return false;
  }

  #takeProbe(entry: Entry, now: number): void {
    this.#probe = entry;
    this.#probeAt = now;
    if (entry.probes === undefined) entry.probes = [this];
    else entry.probes.push(this);
  }

  /** Records a finished call and moves the state if a threshold is passed. */
  onComplete(entry: Entry, rtMs: number, error: unknown, now: number): void {
    const rule = this.rule;
    const bad = rule.strategy === 'slow-ratio' ? rtMs > rule.maxRtMs : error !== undefined;
    if (this.#state === 'open') return;
    if (this.#state === 'half-open') {
      if (entry !== this.#probe) return;
      this.#probe = undefined;
      if (bad) this.#open(now, undefined);
      else this.#close(now);
      return;
    }
    const start = now - (now % rule.statIntervalMs);
    if (start !== this.#statStart) {
      this.#statStart = start;
      this.#good = 0;
      this.#bad = 0;
    }
    if (bad) this.#bad++;
    else this.#good++;
    const badCount = this.#bad;
    const total = badCount + this.#good;
    if (total < rule.minRequestAmount) return;
    if (rule.strategy === 'error-count') {
      if (badCount > rule.threshold) this.#open(now, badCount);
      return;
    }
    const ratio = badCount / total;
    if (ratio > rule.threshold || (ratio === 1 && rule.threshold === 1)) this.#open(now, ratio);
  }

  /** A probe that was refused by a later slot does not count; reopen. */
  abortProbe(entry: Entry, now: number): void {
    if (this.#state === 'half-open' && this.#probe === entry) {
      this.#probe = undefined;
      this.#open(now, undefined);
    }
  }

  #open(now: number, value: number | undefined): void {
    this.#nextRetryAt = now + this.rule.recoveryTimeoutMs;
    this.#transition('open', now, value);
  }

  #close(now: number): void {
    // Counting restarts after closing: the interval that tripped the breaker is history.
    this.#good = 0;
    this.#bad = 0;
    this.#transition('closed', now);
  }

  #transition(to: BreakerState, now: number, value?: number): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.onChange({
      resource: this.rule.resource,
      rule: this.rule,
      from,
      to,
      at: now,
      ...(value === undefined ? {} : { value }),
    });
  }
}

/** The slot that runs every breaker of the resource. */
export class DegradeSlot implements ProcessorSlot {
  entry(entry: Entry, now: number): void {
    const breakers = entry.node.rules.degrade;
    for (let i = 0; i < breakers.length; i++) {
      const b = breakers[i]!;
      if (!b.tryPass(entry, now)) {
        // Give back probes taken by earlier breakers of this resource.
        if (entry.probes !== undefined) for (const p of entry.probes) p.abortProbe(entry, now);
        const r = b.rule;
        const what =
          r.strategy === 'slow-ratio'
            ? `slow-call ratio over ${r.threshold} (RT > ${r.maxRtMs} ms)`
            : r.strategy === 'error-ratio'
              ? `error ratio over ${r.threshold}`
              : `error count over ${r.threshold}`;
        throw BlockError.create(
          'degrade',
          entry.resource,
          entry.origin,
          `circuit breaker ${b.state}: ${what}; retry after ${r.recoveryTimeoutMs} ms`,
          r,
        );
      }
    }
  }

  exit(entry: Entry, rtMs: number, error: unknown, now: number): void {
    const breakers = entry.node.rules.degrade;
    for (let i = 0; i < breakers.length; i++) breakers[i]!.onComplete(entry, rtMs, error, now);
  }
}
