/**
 * Flow rules: a compiled rule (its traffic-shaping controller and which statistics it reads)
 * and the flow slot that checks every flow rule of a resource. Node selection follows
 * Sentinel's FlowRuleChecker: `limitApp` picks whose calls count (everyone, one origin, or
 * the origins not named by other rules) and `strategy` picks whose statistics are read.
 */
import { BlockError } from './block-error.js';
import type { ClusterTokenClient } from './cluster-token-client.js';
import type { Entry } from './entry.js';
import type { ProcessorSlot } from './processor-slot.js';
import type { ResolvedFlowRule } from './rule-types.js';
import type { StatNode } from './stat-node.js';
import {
  DefaultController,
  RateLimiterController,
  type TrafficShapingController,
  WarmUpController,
} from './traffic-shaping.js';

/** Finds another resource's statistics (relate strategy). */
export type NodeLookup = (resource: string) => StatNode | undefined;

/** One flow rule ready to check. */
export class FlowRuleChecker {
  readonly controller: TrafficShapingController;
  readonly #reason: string;

  constructor(readonly rule: ResolvedFlowRule) {
    this.controller = makeController(rule);
    this.#reason = `${rule.grade} ${rule.count} for ${rule.limitApp}${
      rule.strategy === 'direct' ? '' : ` via ${rule.strategy} ${rule.refResource}`
    }${rule.behavior === 'reject' ? '' : `, ${rule.behavior}`}${rule.cluster ? `, cluster ${rule.cluster.flowId}` : ''}`;
  }

  /** The statistics this rule reads for `entry`, or undefined when it does not apply. */
  selectNode(
    entry: Entry,
    namedOrigins: ReadonlySet<string>,
    lookup: NodeLookup,
  ): StatNode | undefined {
    const { limitApp, strategy } = this.rule;
    const origin = entry.origin;
    if (limitApp === 'default') {
      return strategy === 'direct' ? entry.node : this.#reference(entry, lookup);
    }
    if (origin === '') return undefined;
    if (limitApp === origin || (limitApp === 'other' && !namedOrigins.has(origin))) {
      return strategy === 'direct' ? entry.originNode : this.#reference(entry, lookup);
    }
    return undefined;
  }

  #reference(entry: Entry, lookup: NodeLookup): StatNode | undefined {
    const ref = this.rule.refResource!;
    if (this.rule.strategy === 'relate') return lookup(ref);
    return entry.entrance === ref ? entry.entranceNode : undefined;
  }

  /** -1 refuse, 0 pass, > 0 wait ms. */
  check(node: StatNode, now: number, cluster: ClusterTokenClient | undefined): number {
    const c = this.rule.cluster;
    if (c !== undefined && cluster !== undefined) {
      const result = cluster.acquire(c.flowId, this.rule.count, c.thresholdType, 1);
      if (result === 'pass') return 0;
      if (result === 'block') return -1;
      if (!c.fallbackToLocalWhenFail) return 0;
    }
    return this.controller.canPass(node, 1, now);
  }

  /** Why a refused call was refused. */
  get reason(): string {
    return this.#reason;
  }
}

function makeController(rule: ResolvedFlowRule): TrafficShapingController {
  if (rule.grade === 'concurrency') return new DefaultController(rule.count, 'concurrency');
  switch (rule.behavior) {
    case 'warm-up':
      return new WarmUpController(rule.count, rule.warmUpPeriodSec, rule.coldFactor);
    case 'rate-limiter':
      return new RateLimiterController(rule.count, rule.maxQueueingTimeMs);
    case 'warm-up-rate-limiter':
      return new RateLimiterController(rule.count, rule.maxQueueingTimeMs, {
        warmUpPeriodSec: rule.warmUpPeriodSec,
        coldFactor: rule.coldFactor,
      });
    default:
      return new DefaultController(rule.count, 'qps');
  }
}

/** The slot that checks every flow rule of the resource. */
export class FlowSlot implements ProcessorSlot {
  constructor(
    readonly lookup: NodeLookup,
    readonly cluster: () => ClusterTokenClient | undefined,
  ) {}

  entry(entry: Entry, now: number): void {
    const rules = entry.node.rules;
    const checkers = rules.flow;
    for (let i = 0; i < checkers.length; i++) {
      const checker = checkers[i]!;
      const node = checker.selectNode(entry, rules.namedOrigins, this.lookup);
      if (node === undefined) continue;
      const verdict = checker.check(node, now, this.cluster());
      if (verdict < 0) {
        throw BlockError.create('flow', entry.resource, entry.origin, checker.reason, checker.rule);
      }
      if (verdict > entry.waitMs) entry.waitMs = verdict;
    }
  }

  exit(): void {}
}
