/**
 * Hot-parameter limits (Sentinel's ParamFlowChecker): each distinct value of one argument
 * (the flash-sale product id) gets its own token bucket, queue or in-flight count, so one
 * hot value is throttled while the others pass. Values are compared as strings; at most
 * `maxTrackedValues` are tracked, the least recently refilled dropped first.
 */
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import type { ProcessorSlot } from './processor-slot.js';
import type { ResolvedParamFlowRule } from './rule-types.js';

/** The state of one tracked value. */
export interface ParamValueState {
  /** Tokens left in the current period (qps, reject). */
  tokens: number;
  /** When tokens were last added, epoch ms. */
  lastAddAt: number;
  /** When the last queued call was let through (rate-limiter). */
  latestPassedAt: number;
  /** Calls with this value in flight (concurrency). */
  inflight: number;
}

/** The key a parameter value is tracked under, or undefined for values not tracked. */
export function paramKey(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      return undefined;
  }
}

/** One hot-parameter rule ready to check. */
export class ParamFlowChecker {
  readonly #items = new Map<string, number>();
  readonly #values = new Map<string, ParamValueState>();

  constructor(readonly rule: ResolvedParamFlowRule) {
    for (const item of rule.items) this.#items.set(String(item.value), item.count);
  }

  /** How many values are tracked now. */
  get trackedValues(): number {
    return this.#values.size;
  }

  #state(
    key: string,
    now: number,
    fresh: (s: ParamValueState) => void,
  ): { state: ParamValueState; created: boolean } {
    let state = this.#values.get(key);
    if (state !== undefined) return { state, created: false };
    if (this.#values.size >= this.rule.maxTrackedValues) {
      const oldest = this.#values.keys().next().value;
      if (oldest !== undefined) this.#values.delete(oldest);
    }
    state = { tokens: 0, lastAddAt: now, latestPassedAt: -1, inflight: 0 };
    fresh(state);
    this.#values.set(key, state);
    return { state, created: true };
  }

  /** Moves a value to the young end of the eviction order. */
  #touch(key: string, state: ParamValueState): void {
    this.#values.delete(key);
    this.#values.set(key, state);
  }

  /** -1 refuse, 0 pass, > 0 wait ms; `held` gets the state whose in-flight count was taken. */
  check(value: unknown, now: number, entry: Entry): number {
    const key = paramKey(value);
    if (key === undefined) return 0;
    const rule = this.rule;
    const count = this.#items.get(key) ?? rule.count;
    if (rule.grade === 'concurrency') {
      const { state } = this.#state(key, now, () => undefined);
      if (state.inflight + 1 > count) return -1;
      state.inflight++;
      if (entry.paramHeld === undefined) entry.paramHeld = [state];
      else entry.paramHeld.push(state);
      return 0;
    }
    if (count <= 0) return -1;
    const durationMs = rule.durationSec * 1000;
    if (rule.behavior === 'rate-limiter') {
      const { state } = this.#state(key, now, () => undefined);
      const cost = durationMs / count;
      const expected = state.latestPassedAt + cost;
      if (state.latestPassedAt < 0 || expected <= now) {
        state.latestPassedAt = now;
        return 0;
      }
      const wait = expected - now;
      if (wait > rule.maxQueueingTimeMs) return -1;
      state.latestPassedAt = expected;
      return wait;
    }
    // Token bucket: count tokens per duration, burst extra, refilled by elapsed time.
    const max = count + rule.burst;
    const { state, created } = this.#state(key, now, (s) => {
      s.tokens = max - 1;
      s.lastAddAt = now;
    });
    if (created) return 0;
    const elapsed = now - state.lastAddAt;
    if (elapsed > durationMs) {
      const add = (elapsed * count) / durationMs;
      const next = add + state.tokens > max ? max - 1 : state.tokens + add - 1;
      if (next < 0) return -1;
      state.tokens = next;
      state.lastAddAt = now;
      this.#touch(key, state);
      return 0;
    }
    if (state.tokens - 1 >= 0) {
      state.tokens -= 1;
      return 0;
    }
    return -1;
  }
}

/** The slot that checks every hot-parameter rule of the resource. */
export class ParamFlowSlot implements ProcessorSlot {
  entry(entry: Entry, now: number): void {
    const checkers = entry.node.rules.param;
    if (checkers.length === 0) return;
    const args = entry.args;
    if (args === undefined) return;
    for (let i = 0; i < checkers.length; i++) {
      const checker = checkers[i]!;
      const idx = checker.rule.paramIndex;
      const value = args[idx < 0 ? args.length + idx : idx];
      const verdict = checker.check(value, now, entry);
      if (verdict < 0) {
        const r = checker.rule;
        throw BlockError.create(
          'param',
          entry.resource,
          entry.origin,
          `hot parameter args[${idx}]=${JSON.stringify(paramKey(value))} over ${r.grade} limit`,
          r,
        );
      }
      if (verdict > entry.waitMs) entry.waitMs = verdict;
    }
  }

  exit(): void {
    // In-flight counts are given back by the guard for every held state (also on a block).
  }
}
