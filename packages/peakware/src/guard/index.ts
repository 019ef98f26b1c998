/**
 * `peakware/guard`: Sentinel-style flow control for Node services. Flow rules (QPS or
 * concurrency, per origin, direct/relate/chain, reject/warm-up/queueing), circuit breakers,
 * hot-parameter limits, system protection, authority, cluster flow control through the
 * control plane, an HTTP wrapper, and per-second metrics.
 */
export { BlockError, isBlockError } from './block-error.js';
export { type BreakerState, type BreakerStateChange, CircuitBreaker } from './circuit-breaker.js';
export type { ClusterTokenClient, TokenResult } from './cluster-token-client.js';
export { Entry, type EntryOptions } from './entry.js';
export {
  Guard,
  type GuardEvents,
  type GuardOptions,
  INBOUND_RESOURCE,
  type MetricSnapshot,
  type ResourceHandlers,
} from './guard.js';
export { GuardReporter, type GuardReporterOptions } from './guard-reporter.js';
export { type GuardHttpOptions, guardHttpHandler, type HttpHandler } from './http-guard.js';
export { HttpTokenClient, type HttpTokenClientOptions } from './http-token-client.js';
export type { ProcessorSlot } from './processor-slot.js';
export { type GuardedInvocation, type GuardRpcOptions, guardRpcFilter } from './rpc-guard.js';
export { InMemoryRuleSource, type RuleSource } from './rule-source.js';
export type {
  AuthorityRule,
  ClusterFlowConfig,
  DegradeRule,
  DegradeStrategy,
  FlowBehavior,
  FlowGrade,
  FlowRule,
  FlowStrategy,
  GuardRules,
  ParamFlowItem,
  ParamFlowRule,
  ResolvedGuardRules,
  RuleKind,
  SystemRule,
} from './rule-types.js';
export { RULE_DEFAULTS, type RuleProblem, validateRules } from './rule-validation.js';
