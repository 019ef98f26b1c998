/**
 * Routing: which endpoints a call may go to, before the balancer picks one.
 *
 * - Groups and versions are part of the subscription key, so a consumer only ever sees its
 *   own group's instances of the version it was built against.
 * - Tag routing (gray release): a call carrying route tag `canary` (context tag
 *   `route=canary`, or `canary=true`) goes to instances tagged `canary`, falling back to
 *   untagged ones when none is up; calls without a route tag never reach tagged instances
 *   while untagged ones exist. The tag lives in the context, so it sticks through the chain.
 * - Condition rules, as data: `{ when: 'userId % 100 < 10', tag: 'canary' }` puts matching
 *   calls on a route tag (which then sticks downstream). Load and replace them at runtime.
 *   A release by rule (`peak release start --match|--user-hash`) is one such rule.
 */
import type { CallContext } from '../core/context.js';
import { InvalidArgumentError } from '../core/errors.js';
import { type Condition, compileCondition } from './condition-expression.js';
import type { Endpoint } from './endpoint.js';
import type { Invocation } from './rpc-filter.js';

/** The context tag that names a call's route tag. */
export const ROUTE_TAG = 'route';

/** Narrows the candidates of a call (after availability filtering, before balancing). */
export interface Router {
  /** Returns the endpoints the call may use (possibly empty). */
  route(candidates: readonly Endpoint[], invocation: Invocation): readonly Endpoint[];
}

/** The route tags a context asks for: `tags.route`, and every tag set to `'true'`. */
export function routeTags(ctx: CallContext): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(ctx.tags)) {
    if (k === ROUTE_TAG) out.push(v);
    else if (v === 'true') out.push(k);
  }
  return out;
}

/** Tag routing for gray release (see the module comment). */
export class TagRouter implements Router {
  route(candidates: readonly Endpoint[], invocation: Invocation): readonly Endpoint[] {
    let anyTagged = false;
    for (const e of candidates) {
      if (e.instance.tags.length > 0) {
        anyTagged = true;
        break;
      }
    }
    if (!anyTagged) return candidates;
    const wanted = routeTags(invocation.context);
    const untagged = candidates.filter((e) => e.instance.tags.length === 0);
    if (wanted.length > 0) {
      const tagged = candidates.filter((e) => e.instance.tags.some((t) => wanted.includes(t)));
      if (tagged.length > 0) return tagged;
      return untagged;
    }
    return untagged.length > 0 ? untagged : candidates;
  }
}

/** A condition rule as data (JSON from the config center). */
export interface ConditionRule {
  /** A name for logs and `peak rpc` output. */
  name?: string;
  /** Limit to one service name; absent: every service. */
  service?: string;
  /** Limit to one method; absent: every method. */
  method?: string;
  /**
   * The condition over the call's variables: the argument's fields at the top level
   * (`userId`), `args`, `method`, `service`, `caller`, `tags.<name>` (route tags) and
   * `baggage.<name>` (W3C baggage; `baggage["x-gray"]` for names with a dash).
   */
  when: string;
  /** The route tag matching calls get (and carry downstream). */
  tag: string;
}

interface CompiledRule {
  rule: ConditionRule;
  test: Condition;
}

/** Holds the condition rules; replaceable at runtime with {@link ConditionRules.load}. */
export class ConditionRules {
  #rules: CompiledRule[] = [];

  constructor(rules: readonly ConditionRule[] = []) {
    this.load(rules);
  }

  /** Replaces every rule at once; throws (keeping the old rules) when one is invalid. */
  load(rules: readonly ConditionRule[]): void {
    const compiled: CompiledRule[] = [];
    for (const [i, rule] of rules.entries()) {
      if (typeof rule.when !== 'string' || typeof rule.tag !== 'string' || rule.tag.length === 0) {
        throw new InvalidArgumentError(
          `condition rule ${i}: needs 'when' (string) and 'tag' (non-empty)`,
          {
            details: { input: `rules[${i}]` },
          },
        );
      }
      compiled.push({ rule: { ...rule }, test: compileCondition(rule.when) });
    }
    this.#rules = compiled;
  }

  /** The rules in force. */
  list(): ConditionRule[] {
    return this.#rules.map((r) => ({ ...r.rule }));
  }

  /** The route tag the first matching rule gives this call, if any. */
  match(service: string, method: string, args: unknown, ctx: CallContext): string | undefined {
    if (this.#rules.length === 0) return undefined;
    let vars: Record<string, unknown> | undefined;
    for (const { rule, test } of this.#rules) {
      if (rule.service !== undefined && rule.service !== service) continue;
      if (rule.method !== undefined && rule.method !== method) continue;
      vars ??= {
        ...(typeof args === 'object' && args !== null && !Array.isArray(args) ? args : {}),
        args,
        method,
        service,
        caller: ctx.callerApp,
        tags: ctx.tags,
        baggage: ctx.baggage,
      };
      if (test(vars)) return rule.tag;
    }
    return undefined;
  }
}
