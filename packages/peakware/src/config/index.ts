/**
 * `peakware/config`: the config center SDK. Read an app's items, watch changes pushed by
 * the control plane, keep a local snapshot for restarts during outages, and drive guard
 * and RPC rules from config.
 */
export {
  ConfigClient,
  type ConfigClientOptions,
  type ConfigListener,
  type ConfigOrigin,
  itemName,
} from './config-client.js';
export { type ConfigEntry, effectiveEntry, entryName } from './config-entry.js';
export {
  type BindRoutingRulesOptions,
  bindRoutingRules,
  DEFAULT_RPC_ROUTES_ITEM,
  type RoutingRuleTarget,
} from './config-routing-rules.js';
export {
  ConfigRuleSource,
  type ConfigRuleSourceOptions,
  DEFAULT_GUARD_RULES_ITEM,
} from './config-rule-source.js';
export {
  BUILTIN_SCHEMAS,
  type BuiltinSchema,
  type ConfigSchema,
  checkSchema,
  type SchemaProblem,
  validateValue,
} from './config-schema.js';
export {
  type ConfigSource,
  type ConfigSourceListener,
  InMemoryConfigSource,
} from './config-source.js';
export { type DiffLine, lineDiff } from './line-diff.js';
