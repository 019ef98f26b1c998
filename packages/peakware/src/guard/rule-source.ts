/**
 * The seam rules arrive through. Today: `guard.loadRules()` directly, or an
 * {@link InMemoryRuleSource} a program (or a test) updates, or the config center's
 * `ConfigRuleSource` (peakware/config), with which every instance changes rules without a
 * restart.
 */
import type { GuardRules } from './rule-types.js';

/** Somewhere rule sets come from, that says when they change. */
export interface RuleSource {
  /** The current rule set, if one is known yet. */
  current(): GuardRules | undefined;
  /** Calls `listener` with every new rule set; returns the unsubscribe function. */
  subscribe(listener: (rules: GuardRules) => void): () => void;
}

/** A rule source held in memory: `set()` pushes a new rule set to every subscriber. */
export class InMemoryRuleSource implements RuleSource {
  #rules: GuardRules | undefined;
  readonly #listeners = new Set<(rules: GuardRules) => void>();

  constructor(initial?: GuardRules) {
    this.#rules = initial;
  }

  current(): GuardRules | undefined {
    return this.#rules;
  }

  subscribe(listener: (rules: GuardRules) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Replaces the rule set and tells every subscriber. */
  set(rules: GuardRules): void {
    this.#rules = rules;
    for (const l of this.#listeners) l(rules);
  }
}
