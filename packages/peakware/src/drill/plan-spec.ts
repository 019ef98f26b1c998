/**
 * A plan (预案): a named set of changes an operator applies at once for a peak (or an
 * incident) and rolls back after. Every change is one config item of the plan's app, so a
 * plan rides on the config center: versions, push, audit, and rollback to an exact earlier
 * version. The kinds name what the change means and where its item lives:
 *
 * | kind          | item                          | value                                  |
 * |---------------|-------------------------------|----------------------------------------|
 * | `guard-rules` | `governance/guard-rules`      | a guard rule set (checked by guard)     |
 * | `flag`        | `flags/<name>`                | any JSON (a degrade switch the app reads) |
 * | `cache`       | `cache/<cache>`               | cache settings (`l1Enabled`, ...)       |
 * | `weights`     | `governance/lb-weights`       | `{ "<instanceId>": weight }`            |
 * | `mq-pause`    | `mq-pause/<group>`            | `{ "paused": true }`                    |
 * | `entry`       | `entries/<entry>`             | `{ "open": false }` (a change entry closed) |
 * | `config`      | any `group/key`               | any value                               |
 *
 * An item that does not exist yet is created with its baseline first (the kind's neutral
 * value, or the change's `baseline`), so a rollback always returns to an exact version.
 */

import { CACHE_SETTINGS_SCHEMA } from '../cache/cache-config.js';
import type { ConfigSchema } from '../config/config-schema.js';

/** One change of a plan. */
export type PlanChange =
  | { kind: 'guard-rules'; item?: string; rules: unknown }
  | { kind: 'flag'; name: string; value: unknown; baseline?: unknown }
  | {
      kind: 'cache';
      cache: string;
      settings: { l1Enabled?: boolean; l1TtlMs?: number; freezeWrites?: boolean };
    }
  | { kind: 'weights'; item?: string; weights: Record<string, number> }
  | { kind: 'mq-pause'; group: string; paused: boolean }
  | { kind: 'entry'; entry: string; open: boolean }
  | {
      kind: 'config';
      item: string;
      value: string;
      format?: 'json' | 'text';
      baseline?: string;
      schema?: ConfigSchema;
    };

/** A plan as stored and applied. */
export interface PlanSpec {
  /** 1-128 of [A-Za-z0-9_.-]. */
  name: string;
  /** The app (config namespace) whose items it changes. */
  app: string;
  description?: string;
  changes: PlanChange[];
}

/** One change resolved to its config item. */
export interface ResolvedChange {
  /** Index in the plan's `changes`. */
  index: number;
  kind: PlanChange['kind'];
  group: string;
  key: string;
  format: 'json' | 'text';
  /** The value to publish (text as stored). */
  value: string;
  /** Published first when the item does not exist, so rollback has a version to go back to. */
  baseline: string;
  /** The schema the value is checked with (besides the item's own), if the kind has one. */
  schema?: ConfigSchema;
}

/** The group of plan switch items of each kind. */
export const PLAN_GROUPS = {
  flag: 'flags',
  cache: 'cache',
  mqPause: 'mq-pause',
  entry: 'entries',
} as const;

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

function split(item: string, index: number): { group: string; key: string } {
  const [group, key, ...rest] = item.split('/');
  if (
    group === undefined ||
    key === undefined ||
    rest.length > 0 ||
    !NAME.test(group) ||
    !NAME.test(key)
  )
    throw new Error(
      `changes[${index}].item: '${item}' is not group/key (1-128 of [A-Za-z0-9_.-] each)`,
    );
  return { group, key };
}

function named(v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME.test(v))
    throw new Error(`${what}: must be 1-128 of [A-Za-z0-9_.-]`);
  return v;
}

/**
 * Resolves every change to its item, value and baseline. Throws an Error naming the change
 * (`changes[2].group: ...`) when one is malformed; values are checked against schemas by
 * the control plane, which refuses the whole plan on the first bad one.
 */
export function resolvePlan(plan: PlanSpec): ResolvedChange[] {
  named(plan.name, 'name');
  named(plan.app, 'app');
  if (!Array.isArray(plan.changes) || plan.changes.length === 0)
    throw new Error('changes: a plan needs at least one change');
  if (plan.changes.length > 200) throw new Error('changes: at most 200 changes in a plan');
  const out: ResolvedChange[] = [];
  const seen = new Map<string, number>();
  for (const [index, c] of plan.changes.entries()) {
    const at = `changes[${index}]`;
    let r: Omit<ResolvedChange, 'index' | 'kind'>;
    switch (c?.kind) {
      case 'guard-rules':
        r = {
          ...split(c.item ?? 'governance/guard-rules', index),
          format: 'json',
          value: JSON.stringify(c.rules),
          baseline: '{}',
          schema: { $peak: 'guard-rules' },
        };
        break;
      case 'flag':
        if (c.value === undefined) throw new Error(`${at}.value: a flag needs a value`);
        r = {
          group: PLAN_GROUPS.flag,
          key: named(c.name, `${at}.name`),
          format: 'json',
          value: JSON.stringify(c.value),
          baseline: JSON.stringify(c.baseline ?? null),
        };
        break;
      case 'cache':
        r = {
          group: PLAN_GROUPS.cache,
          key: named(c.cache, `${at}.cache`),
          format: 'json',
          value: JSON.stringify(c.settings),
          baseline: '{}',
          schema: CACHE_SETTINGS_SCHEMA,
        };
        break;
      case 'weights':
        r = {
          ...split(c.item ?? 'governance/lb-weights', index),
          format: 'json',
          value: JSON.stringify(c.weights),
          baseline: '{}',
          schema: { $peak: 'lb-weights' },
        };
        break;
      case 'mq-pause':
        if (typeof c.paused !== 'boolean') throw new Error(`${at}.paused: must be true or false`);
        r = {
          group: PLAN_GROUPS.mqPause,
          key: named(c.group, `${at}.group`),
          format: 'json',
          value: JSON.stringify({ paused: c.paused }),
          baseline: '{"paused":false}',
        };
        break;
      case 'entry':
        if (typeof c.open !== 'boolean') throw new Error(`${at}.open: must be true or false`);
        r = {
          group: PLAN_GROUPS.entry,
          key: named(c.entry, `${at}.entry`),
          format: 'json',
          value: JSON.stringify({ open: c.open }),
          baseline: '{"open":true}',
        };
        break;
      case 'config':
        if (typeof c.value !== 'string') throw new Error(`${at}.value: must be the value as text`);
        r = {
          ...split(c.item, index),
          format: c.format ?? 'json',
          value: c.value,
          baseline: c.baseline ?? (c.format === 'text' ? '' : 'null'),
          ...(c.schema === undefined ? {} : { schema: c.schema }),
        };
        break;
      default:
        throw new Error(
          `${at}.kind: must be one of guard-rules, flag, cache, weights, mq-pause, entry, config`,
        );
    }
    const label = `${r.group}/${r.key}`;
    const dup = seen.get(label);
    if (dup !== undefined)
      throw new Error(`${at}: changes[${dup}] changes ${label} already; one change per item`);
    seen.set(label, index);
    out.push({ index, kind: c.kind, ...r });
  }
  return out;
}
