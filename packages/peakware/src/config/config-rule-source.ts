/**
 * Guard rules through the config center: a {@link RuleSource} backed by one JSON item
 * (default `governance/guard-rules`, published with schema `{ "$peak": "guard-rules" }` so a
 * bad rule set is refused at publish time). `guard.useRuleSource(source)` then changes the
 * rules of every instance without a restart; a rule set the guard still refuses leaves the
 * rules in force.
 */
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { RuleSource } from '../guard/rule-source.js';
import type { GuardRules } from '../guard/rule-types.js';
import type { ConfigSource } from './config-source.js';

/** The item guard rules live in unless told otherwise. */
export const DEFAULT_GUARD_RULES_ITEM = 'governance/guard-rules';

/** Options of {@link ConfigRuleSource}. */
export interface ConfigRuleSourceOptions {
  /** `group/key` of the rules item. Default {@link DEFAULT_GUARD_RULES_ITEM}. */
  item?: string;
  logger?: Logger;
}

/** A guard {@link RuleSource} that follows one config item. */
export class ConfigRuleSource implements RuleSource {
  readonly #client: ConfigSource;
  readonly #item: string;
  readonly #logger: Logger;

  constructor(client: ConfigSource, options: ConfigRuleSourceOptions = {}) {
    this.#client = client;
    this.#item = options.item ?? DEFAULT_GUARD_RULES_ITEM;
    this.#logger = options.logger ?? silentLogger();
  }

  #parse(value: string): GuardRules | undefined {
    try {
      return JSON.parse(value) as GuardRules;
    } catch (err) {
      this.#logger.warn(
        { err: errorMessage(err), item: this.#item },
        'guard rules item is not JSON; ignored',
      );
      return undefined;
    }
  }

  current(): GuardRules | undefined {
    const e = this.#client.entry(this.#item);
    return e === undefined ? undefined : this.#parse(e.value);
  }

  subscribe(listener: (rules: GuardRules) => void): () => void {
    return this.#client.watch(this.#item, (entry) => {
      if (entry.removed === true) return; // the rules in force stay
      const rules = this.#parse(entry.value);
      if (rules !== undefined) listener(rules);
    });
  }
}
