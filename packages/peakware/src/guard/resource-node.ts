/**
 * One guarded resource: its statistics (all callers together), per-origin and per-entrance
 * statistics created on first use, and the compiled rules that apply to it. The guard keeps
 * one per resource name, so a call does a single map lookup to find everything it needs.
 */
import type { CircuitBreaker } from './circuit-breaker.js';
import type { FlowRuleChecker } from './flow-rule-checker.js';
import type { ParamFlowChecker } from './param-flow-checker.js';
import type { AuthorityRule } from './rule-types.js';
import { StatNode } from './stat-node.js';

/** The rules compiled for one resource, in the order the slots read them. */
export interface ResourceRules {
  authority: readonly AuthorityRule[];
  param: readonly ParamFlowChecker[];
  flow: readonly FlowRuleChecker[];
  degrade: readonly CircuitBreaker[];
  /** Origins named by this resource's flow rules (for `limitApp: 'other'`). */
  namedOrigins: ReadonlySet<string>;
  /** True when a flow rule uses `strategy: 'chain'`, so entrance statistics are kept. */
  hasChain: boolean;
}

/** No rules: what a resource without any rule points at. */
export const NO_RULES: ResourceRules = Object.freeze({
  authority: [],
  param: [],
  flow: [],
  degrade: [],
  namedOrigins: new Set<string>(),
  hasChain: false,
});

/** Most distinct origins (or entrances) tracked per resource; beyond it calls count only in the resource. */
export const MAX_ORIGINS_PER_RESOURCE = 200;

/** Statistics and rules of one resource. */
export class ResourceNode extends StatNode {
  /** Rules in force for this resource (swapped whole on every rule load). */
  rules: ResourceRules = NO_RULES;
  readonly #origins = new Map<string, StatNode>();
  readonly #entrances = new Map<string, StatNode>();
  readonly #clock: (() => number) | undefined;

  constructor(
    readonly resource: string,
    clock?: () => number,
  ) {
    super(clock, true);
    this.#clock = clock;
  }

  /** The statistics of calls from `origin`, created on first use (undefined past the cap). */
  origin(origin: string): StatNode | undefined {
    return this.#child(this.#origins, origin);
  }

  /** The statistics of calls that entered through `entrance` (for chain rules). */
  entrance(entrance: string): StatNode | undefined {
    return this.#child(this.#entrances, entrance);
  }

  /** The origins seen so far, with their statistics. */
  origins(): ReadonlyMap<string, StatNode> {
    return this.#origins;
  }

  #child(map: Map<string, StatNode>, key: string): StatNode | undefined {
    let node = map.get(key);
    if (node === undefined) {
      if (map.size >= MAX_ORIGINS_PER_RESOURCE) return undefined;
      node = new StatNode(this.#clock);
      map.set(key, node);
    }
    return node;
  }
}
