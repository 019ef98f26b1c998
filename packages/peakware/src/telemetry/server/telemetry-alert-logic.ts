/**
 * The pure part of SLA alerts, apart from the SQL that gathers the figures: when a breach
 * fires or resolves (the for-duration), what a window's burn rate is and when two windows
 * breach together, which seconds of pushed metrics a window counts, and whether an event's
 * webhook is sent or silenced. The evaluator (telemetry-alert-evaluator.ts) measures and stores;
 * these functions decide, from numbers and a clock reading only.
 */

/** What one evaluation of a rule measured. */
export interface Measure {
  breach: boolean;
  /** The measured p99 (ms), error rate, backlog (messages) or long-window burn rate. */
  value: number;
  qps: number;
  /** Kind-specific figures for the event (calls, short-window burn rate, ...). */
  details: Record<string, unknown>;
}

/** The part of a rule's state that the for-duration works on. */
export interface AlertState {
  /** When the current run of breached evaluations started, epoch ms. */
  breachSince?: number;
  /** True between a fired event and the next resolved one. */
  firing: boolean;
}

/**
 * Moves `state` on by one evaluation at `now` and says which event that makes: `fired`
 * once a breach has lasted `forSeconds` (a for-duration of 0 fires on the first breached
 * evaluation), `resolved` on the first evaluation without a breach after firing, else
 * undefined. A breach that ends before its for-duration starts over next time.
 */
export function stepAlert(
  state: AlertState,
  breach: boolean,
  forSeconds: number,
  now: number,
): 'fired' | 'resolved' | undefined {
  if (breach) {
    state.breachSince ??= now;
    if (!state.firing && now - state.breachSince >= forSeconds * 1000) {
      state.firing = true;
      return 'fired';
    }
    return undefined;
  }
  delete state.breachSince;
  if (state.firing) {
    state.firing = false;
    return 'resolved';
  }
  return undefined;
}

/** What a threshold check reads of a rule. */
export interface ThresholdRule {
  threshold: number;
  minQps: number;
  windowSeconds: number;
}

/**
 * A `p99` or `error-rate` measurement of `calls` over the rule's window: breached when
 * there were calls, at least `minQps` of them per second, and `value` is over the threshold.
 */
export function thresholdMeasure(
  rule: ThresholdRule,
  calls: number,
  value: number,
  details: Record<string, unknown>,
): Measure {
  const qps = calls / rule.windowSeconds;
  return { breach: calls > 0 && qps >= rule.minQps && value > rule.threshold, value, qps, details };
}

/** The short window a burn-rate rule uses when none is given: 1/12 of the long one. */
export function defaultShortWindowSeconds(windowSeconds: number): number {
  return Math.max(1, Math.round(windowSeconds / 12));
}

/**
 * The burn rate of a window: its bad-call ratio over the error budget (1 − objective). 1
 * spends the budget exactly over the SLO period; 0 for a window without calls.
 */
export function burnRate(bad: number, calls: number, objective: number): number {
  return calls === 0 ? 0 : bad / calls / (1 - objective);
}

/** Calls and bad calls over a burn-rate rule's long window and its short (latest) part. */
export interface CallCounts {
  calls: number;
  bad: number;
  shortCalls: number;
  shortBad: number;
}

/** What a burn-rate check reads of a rule. */
export interface BurnRule extends ThresholdRule {
  /** The SLO, a fraction strictly between 0 and 1. Default 0.999. */
  objective?: number;
  /** Set when the calls come from pushed metrics rather than spans. */
  resource?: string;
}

/**
 * A burn-rate measurement (SRE multi-window): breached only when both the long and the
 * short window burn faster than the threshold (the factor), with calls in both and at
 * least `minQps` over the long one. The value is the long window's burn rate.
 */
export function burnMeasure(rule: BurnRule, c: CallCounts): Measure {
  const objective = rule.objective ?? 0.999;
  const longBurn = burnRate(c.bad, c.calls, objective);
  const shortBurn = burnRate(c.shortBad, c.shortCalls, objective);
  const qps = c.calls / rule.windowSeconds;
  return {
    breach:
      c.calls > 0 &&
      c.shortCalls > 0 &&
      qps >= rule.minQps &&
      longBurn > rule.threshold &&
      shortBurn > rule.threshold,
    value: longBurn,
    qps,
    details: {
      longBurnRate: longBurn,
      shortBurnRate: shortBurn,
      calls: c.calls,
      shortCalls: c.shortCalls,
      objective: rule.objective,
      source: rule.resource === undefined ? 'spans' : 'metrics',
    },
  };
}

/**
 * The seconds of pushed metrics a window counts at `now`, epoch ms: from `from` (long
 * window) or `shortFrom` (short window) up to `until` (exclusive), which is the start of
 * the last whole second, left out because its pushes may still be on their way.
 */
export function metricsWindow(
  now: number,
  windowSeconds: number,
  shortSeconds: number,
): { from: number; shortFrom: number; until: number } {
  const until = Math.floor(now / 1000) * 1000 - 1000;
  return { from: until - windowSeconds * 1000, shortFrom: until - shortSeconds * 1000, until };
}

/**
 * How an event of a rule is delivered at `now`: `none` without a webhook, `silenced` while
 * the rule is silenced (`silencedUntil`, an ISO time, still ahead), else `pending` (sent).
 */
export function deliveryFor(
  rule: { webhook?: string; silencedUntil?: string },
  now: number,
): 'none' | 'silenced' | 'pending' {
  if (rule.webhook === undefined) return 'none';
  const silenced = rule.silencedUntil !== undefined && Date.parse(rule.silencedUntil) > now;
  return silenced ? 'silenced' : 'pending';
}
