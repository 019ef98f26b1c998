/**
 * The rule kinds of the guard, as users write them (plain JSON-able objects, so they can come
 * from the config center) and as the guard holds them after validation (every default
 * filled in). Defaults are listed once, in `rule-validation.ts`, and in the README.
 */

/** What a flow rule counts: admitted requests per second, or requests in flight. */
export type FlowGrade = 'qps' | 'concurrency';

/**
 * Which statistics a flow rule reads: the resource's own (`direct`), another resource's
 * (`relate`: throttle writes when reads are busy), or the resource's calls that entered
 * through one entrance (`chain`).
 */
export type FlowStrategy = 'direct' | 'relate' | 'chain';

/**
 * What happens above the threshold: `reject` at once; `warm-up` (the threshold climbs from
 * count / coldFactor to count over warmUpPeriodSec after a quiet spell); `rate-limiter`
 * (requests queue and leave evenly spaced, waiting at most maxQueueingTimeMs);
 * `warm-up-rate-limiter` (both).
 */
export type FlowBehavior = 'reject' | 'warm-up' | 'rate-limiter' | 'warm-up-rate-limiter';

/** How a cluster flow rule shares its budget with the other instances of the service. */
export interface ClusterFlowConfig {
  /** The id of the shared budget on the token server (unique per service and rule). */
  flowId: string;
  /** `global`: count is the budget of all instances together; `avg-local`: count per instance. */
  thresholdType?: 'global' | 'avg-local';
  /** Use the local rule when the token server does not answer (default true); else pass. */
  fallbackToLocalWhenFail?: boolean;
}

/** A flow rule: a QPS or concurrency limit on a resource, optionally per origin. */
export interface FlowRule {
  /** The resource, e.g. `OrderService.create` or `GET /orders/:id`. */
  resource: string;
  /** The threshold: requests per second (qps) or in flight (concurrency). */
  count: number;
  /** Default `qps`. */
  grade?: FlowGrade;
  /**
   * Whose calls the rule limits: `default` (everyone together), a named caller app, or
   * `other` (every caller not named by another rule of this resource). Default `default`.
   */
  limitApp?: string;
  /** Default `direct`. */
  strategy?: FlowStrategy;
  /** The related resource (`relate`) or the entrance (`chain`). */
  refResource?: string;
  /** Default `reject`. */
  behavior?: FlowBehavior;
  /** Warm-up length in seconds. Default 10. */
  warmUpPeriodSec?: number;
  /** Cold threshold is count / coldFactor. Default 3; must be > 1. */
  coldFactor?: number;
  /** Longest a queued request waits (rate-limiter behaviours), ms. Default 500. */
  maxQueueingTimeMs?: number;
  /** Share the threshold with the other instances through the control plane's token server. */
  cluster?: ClusterFlowConfig;
}

/** What a circuit breaker watches. */
export type DegradeStrategy = 'slow-ratio' | 'error-ratio' | 'error-count';

/**
 * A circuit breaker on a resource: closed → open when the ratio or count passes the
 * threshold (over statIntervalMs, with at least minRequestAmount calls) → half-open after
 * recoveryTimeoutMs (one probe call) → closed if the probe is good, open again if not.
 */
export interface DegradeRule {
  resource: string;
  strategy: DegradeStrategy;
  /** Slow-call ratio or error ratio (0..1), or error count. */
  threshold: number;
  /** A call slower than this is slow (slow-ratio only), ms. */
  maxRtMs?: number;
  /** How long the breaker stays open before the probe, ms. */
  recoveryTimeoutMs: number;
  /** Fewer calls than this in the interval never trip the breaker. Default 5. */
  minRequestAmount?: number;
  /** The interval the ratio or count is taken over, ms. Default 1000. */
  statIntervalMs?: number;
}

/** A per-value override of a hot-parameter rule. */
export interface ParamFlowItem {
  /** The argument value (compared as a string: 42 and '42' are one value). */
  value: string | number | boolean;
  /** The threshold for this value. */
  count: number;
}

/** A hot-parameter limit: each distinct value of one argument gets its own threshold. */
export interface ParamFlowRule {
  resource: string;
  /** Which argument (index into `args`); negative counts from the end. */
  paramIndex: number;
  /** Requests per durationSec (qps) or in flight (concurrency) per value. */
  count: number;
  /** Default `qps`. */
  grade?: FlowGrade;
  /** The token-bucket period, seconds. Default 1. */
  durationSec?: number;
  /** Extra tokens a quiet value may burst with. Default 0. */
  burst?: number;
  /** `reject` (default) or `rate-limiter` (spaced, waiting at most maxQueueingTimeMs). */
  behavior?: 'reject' | 'rate-limiter';
  /** Default 0 (rate-limiter only). */
  maxQueueingTimeMs?: number;
  /** Per-value thresholds (the flash-sale item gets its own). */
  items?: ParamFlowItem[];
  /** How many distinct values are tracked; the least recently refilled go first. Default 4000. */
  maxTrackedValues?: number;
}

/**
 * System protection for inbound calls (all resources together). Every field is optional;
 * with several system rules the smallest value of each field applies.
 */
export interface SystemRule {
  /** Inbound admitted requests per second. */
  maxQps?: number;
  /** Inbound requests in flight. */
  maxConcurrency?: number;
  /** Average response time of inbound calls over the last second, ms. */
  maxAvgRtMs?: number;
  /** Process CPU usage, 0..1 of the machine's cores. Trips on its own. */
  maxCpuUsage?: number;
  /** Mean event-loop delay over the last sample, ms (Node's analogue of load). */
  maxEventLoopLagMs?: number;
  /** 1-minute OS load average. */
  maxLoad?: number;
  /**
   * With lag/load over the limit, block only when in-flight calls exceed max success QPS ×
   * min RT (the BBR check: the process is queueing, not just busy). Default true.
   */
  bbr?: boolean;
}

/** Allow or deny a resource by caller app. Calls with no origin always pass. */
export interface AuthorityRule {
  resource: string;
  /** `allow`: only the listed origins; `deny`: all but the listed origins. */
  strategy: 'allow' | 'deny';
  origins: string[];
}

/** A whole rule set; a kind left out means no rules of that kind. */
export interface GuardRules {
  flow?: FlowRule[];
  degrade?: DegradeRule[];
  param?: ParamFlowRule[];
  system?: SystemRule[];
  authority?: AuthorityRule[];
}

/** A rule kind: what a {@link GuardRules} key or a block error names. */
export type RuleKind = 'flow' | 'degrade' | 'param' | 'system' | 'authority';

/** A flow rule with every default filled in. */
export type ResolvedFlowRule = Required<Omit<FlowRule, 'refResource' | 'cluster'>> & {
  refResource?: string;
  cluster?: Required<ClusterFlowConfig>;
};

/** A degrade rule with every default filled in. */
export type ResolvedDegradeRule = Required<DegradeRule>;

/** A param rule with every default filled in. */
export type ResolvedParamFlowRule = Required<ParamFlowRule>;

/** A validated rule set with every default filled in. */
export interface ResolvedGuardRules {
  flow: ResolvedFlowRule[];
  degrade: ResolvedDegradeRule[];
  param: ResolvedParamFlowRule[];
  system: SystemRule[];
  authority: AuthorityRule[];
}
