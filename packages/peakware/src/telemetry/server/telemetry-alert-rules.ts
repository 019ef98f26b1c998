/**
 * SLA alert rules: their four kinds, the fields each takes, their defaults, and the check of
 * a rule from the API.
 *
 * - `p99` (over the collector's spans of one service, optionally one endpoint, real traffic
 *   only): breached when p99 RT > `threshold` ms over `windowSeconds` while QPS ≥ `minQps`;
 * - `error-rate` (same spans): breached when errors / calls > `threshold` (0..1);
 * - `mq-backlog`: breached when the backlog of consumer `group` on `topic` (messages stored
 *   but not yet acked, in flight included: mq's own backlog query) > `threshold`;
 * - `burn-rate` (SRE multi-window, multi-burn-rate): an SLO says `objective` (e.g. 0.999)
 *   of the service's calls succeed (and, with `latencyMs`, finish within it); the burn
 *   rate of a window is its bad-call ratio / (1 − objective); breached when the burn rate
 *   over `windowSeconds` (long, default 1 h) AND over `shortWindowSeconds` (default 5 min)
 *   both exceed `threshold` (the factor, default 14.4: 2% of a 30-day budget in an hour).
 *
 * `error-rate`, `burn-rate` and `p99` rules with a `resource` read that resource's pushed
 * per-second metrics (`MetricsPusher`: every call, summed over instances, the last second
 * left out as pushes may still be on their way) instead of spans, which are sampled; a
 * `p99` rule takes the p99 of the instances' pushed RT histograms added together, and a
 * `burn-rate` rule's `latencyMs` counts the calls those histograms put above it (to the
 * histogram's bucket width, 12.5 %; a call that both failed and was slow counts twice,
 * capped at the calls).
 */
import { InvalidArgumentError } from '../../core/errors.js';
import { defaultShortWindowSeconds } from './telemetry-alert-logic.js';

/** The kinds of alert rule. */
export const ALERT_KINDS = ['p99', 'error-rate', 'mq-backlog', 'burn-rate'] as const;

/** One kind of alert rule. */
export type AlertKind = (typeof ALERT_KINDS)[number];

/** One alert rule. */
export interface AlertRule {
  name: string;
  kind: AlertKind;
  /** The watched service (every kind but `mq-backlog`). */
  service?: string;
  /** Server span name; absent = every endpoint of the service. */
  endpoint?: string;
  /**
   * `error-rate`/`burn-rate`/`p99`: read this resource's pushed per-second metrics (every
   * call; a p99 from their RT histograms) instead of the service's spans (sampled).
   */
  resource?: string;
  /** `mq-backlog`: the consumer group. */
  group?: string;
  /** `mq-backlog`: the topic. */
  topic?: string;
  /**
   * ms for `p99`, a fraction 0..1 for `error-rate`, messages for `mq-backlog`, the burn
   * factor for `burn-rate`.
   */
  threshold: number;
  minQps: number;
  /** The window (`burn-rate`: the long one). Not used by `mq-backlog`. */
  windowSeconds: number;
  /** `burn-rate`: the short window. */
  shortWindowSeconds?: number;
  /** `burn-rate`: the SLO objective, a fraction strictly between 0 and 1. */
  objective?: number;
  /** `burn-rate`: a call slower than this (ms) counts against the SLO too. */
  latencyMs?: number;
  forSeconds: number;
  webhook?: string;
  silencedUntil?: string;
}

/** A rule as the API takes it: the kind-specific defaults may be left out. */
export type AlertRuleInput = Omit<
  AlertRule,
  'threshold' | 'minQps' | 'windowSeconds' | 'forSeconds' | 'silencedUntil'
> & {
  threshold?: number;
  minQps?: number;
  windowSeconds?: number;
  forSeconds?: number;
};

/** One fired or resolved event. */
export interface AlertEvent {
  id: number;
  rule: string;
  state: 'fired' | 'resolved';
  /** The measured p99 (ms), error rate, backlog (messages) or long-window burn rate. */
  value: number;
  qps: number;
  /** Kind-specific figures (short-window burn rate, in-flight messages, ...). */
  details: Record<string, unknown>;
  at: string;
  /** `sent`, `failed: ...`, `silenced`, `none` (no webhook) or `pending`. */
  delivery: string;
}

/** Default burn factor: 14.4 over 1 h burns 2% of a 30-day error budget. */
export const DEFAULT_BURN_FACTOR = 14.4;

/**
 * A refused rule: the message names the rule and the field; `details.input` is the field,
 * the first quoted name in `what` (or its first word: `webhook must be ...`) unless given.
 */
function bad(
  rule: string,
  what: string,
  field = /'([A-Za-z]+)'/.exec(what)?.[1] ?? /^([A-Za-z]+) /.exec(what)?.[1],
): InvalidArgumentError {
  return new InvalidArgumentError(`alert rule ${rule}: ${what}`, {
    details: field === undefined ? {} : { input: field },
  });
}

/**
 * Fills the kind's defaults and checks a rule from the API; throws a clear
 * {@link InvalidArgumentError} naming the rule and the field.
 */
export function validateRule(input: AlertRuleInput): AlertRule {
  const n = input.name;
  const spanKind = input.kind !== 'mq-backlog';
  if (spanKind) {
    if (input.service === undefined) {
      throw bad(n, `a ${input.kind} rule needs 'service' (the service whose calls it watches)`);
    }
    for (const f of ['group', 'topic'] as const) {
      if (input[f] !== undefined) {
        throw bad(n, `'${f}' belongs to mq-backlog rules, not ${input.kind}`);
      }
    }
  } else {
    if (input.group === undefined || input.topic === undefined) {
      throw bad(n, "an mq-backlog rule needs 'group' (the consumer group) and 'topic'");
    }
    for (const f of ['service', 'endpoint'] as const) {
      if (input[f] !== undefined) {
        throw bad(n, `'${f}' does not apply to an mq-backlog rule; it watches 'group' on 'topic'`);
      }
    }
  }
  if (input.resource !== undefined) {
    if (input.kind !== 'error-rate' && input.kind !== 'burn-rate' && input.kind !== 'p99') {
      throw bad(
        n,
        `'resource' (pushed metrics) applies to p99, error-rate and burn-rate rules, not ${input.kind}`,
      );
    }
    if (input.endpoint !== undefined) {
      throw bad(n, "give 'resource' (pushed metrics) or 'endpoint' (spans), not both");
    }
  }
  if (input.kind !== 'burn-rate') {
    for (const f of ['objective', 'latencyMs', 'shortWindowSeconds'] as const) {
      if (input[f] !== undefined) {
        throw bad(n, `'${f}' belongs to burn-rate rules, not ${input.kind}`);
      }
    }
  }
  let threshold = input.threshold;
  let windowSeconds = input.windowSeconds ?? 60;
  let shortWindowSeconds: number | undefined;
  switch (input.kind) {
    case 'p99':
      if (threshold === undefined) throw bad(n, "a p99 rule needs 'threshold' (ms)");
      break;
    case 'error-rate':
      if (threshold === undefined) throw bad(n, "an error-rate rule needs 'threshold' (0..1)");
      if (threshold > 1) {
        throw bad(n, `an error-rate threshold is a fraction 0..1, got ${threshold}`, 'threshold');
      }
      break;
    case 'mq-backlog':
      if (threshold === undefined || !Number.isInteger(threshold)) {
        throw bad(n, `an mq-backlog rule needs 'threshold', a whole number of messages`);
      }
      break;
    case 'burn-rate': {
      const o = input.objective;
      if (o === undefined || !(o > 0 && o < 1)) {
        throw bad(
          n,
          `a burn-rate rule needs 'objective', the SLO as a fraction strictly between 0 and 1 (e.g. 0.999), got ${o}`,
        );
      }
      threshold ??= DEFAULT_BURN_FACTOR;
      if (!(threshold > 0)) throw bad(n, `the burn factor 'threshold' must be > 0`);
      windowSeconds = input.windowSeconds ?? 3600;
      shortWindowSeconds = input.shortWindowSeconds ?? defaultShortWindowSeconds(windowSeconds);
      if (shortWindowSeconds >= windowSeconds) {
        throw bad(
          n,
          `shortWindowSeconds (${shortWindowSeconds}) must be shorter than windowSeconds (${windowSeconds}), e.g. 300 and 3600`,
        );
      }
      break;
    }
  }
  if (input.webhook !== undefined && !/^https?:\/\//.test(input.webhook)) {
    throw bad(n, `webhook must be an http(s) URL, got '${input.webhook}'`);
  }
  const rule: AlertRule = {
    name: n,
    kind: input.kind,
    threshold,
    minQps: input.minQps ?? 0,
    windowSeconds,
    forSeconds: input.forSeconds ?? 0,
  };
  for (const f of [
    'service',
    'endpoint',
    'resource',
    'group',
    'topic',
    'objective',
    'latencyMs',
  ] as const) {
    const v = input[f];
    if (v !== undefined) Object.assign(rule, { [f]: v });
  }
  if (shortWindowSeconds !== undefined) rule.shortWindowSeconds = shortWindowSeconds;
  if (input.webhook !== undefined) rule.webhook = input.webhook;
  return rule;
}
