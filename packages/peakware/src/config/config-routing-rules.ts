/**
 * RPC condition routing rules through the config center: one JSON item (default
 * `governance/rpc-routes`, published with schema `{ "$peak": "rpc-routes" }`) holds the
 * rule list; every change is applied to the client with `setRules` at once, so live
 * traffic moves without a restart. A list the client refuses leaves the rules in force.
 */
import { errorMessage } from '../core/errors.js';
import { type Logger, silentLogger } from '../core/logger.js';
import type { ConditionRule } from '../rpc/router.js';
import type { ConfigSource } from './config-source.js';

/** The item routing rules live in unless told otherwise. */
export const DEFAULT_RPC_ROUTES_ITEM = 'governance/rpc-routes';

/** Anything with `setRules`, such as an `RpcClient`. */
export interface RoutingRuleTarget {
  setRules(rules: readonly ConditionRule[]): void;
}

/** Options of {@link bindRoutingRules}. */
export interface BindRoutingRulesOptions {
  /** `group/key` of the rules item. Default {@link DEFAULT_RPC_ROUTES_ITEM}. */
  item?: string;
  logger?: Logger;
  /** Told about every list refused by the target (the previous list stays). */
  onRejected?: (err: Error) => void;
}

/** Applies the item's rules now (if known) and on every change; returns the unbind function. */
export function bindRoutingRules(
  client: ConfigSource,
  target: RoutingRuleTarget,
  options: BindRoutingRulesOptions = {},
): () => void {
  const item = options.item ?? DEFAULT_RPC_ROUTES_ITEM;
  const logger = options.logger ?? silentLogger();
  const apply = (value: string) => {
    try {
      target.setRules(JSON.parse(value) as ConditionRule[]);
    } catch (err) {
      logger.warn(
        { err: errorMessage(err), item },
        'routing rules refused; the rules in force stay',
      );
      options.onRejected?.(err as Error);
    }
  };
  const current = client.entry(item);
  if (current !== undefined) apply(current.value);
  // A removed item leaves the rules in force.
  return client.watch(item, (entry) => {
    if (entry.removed !== true) apply(entry.value);
  });
}
