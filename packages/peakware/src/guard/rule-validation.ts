/**
 * Validation of a whole rule set, with the defaults of every rule kind written down once.
 * Rules usually come from outside (the config center, a JSON file, an HTTP body), so the
 * input is `unknown` and every problem is reported with its path (`flow[2].count`).
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import type {
  AuthorityRule,
  ResolvedDegradeRule,
  ResolvedFlowRule,
  ResolvedGuardRules,
  ResolvedParamFlowRule,
  SystemRule,
} from './rule-types.js';

/** The defaults of every rule field, in one place. */
export const RULE_DEFAULTS = {
  flow: {
    grade: 'qps',
    limitApp: 'default',
    strategy: 'direct',
    behavior: 'reject',
    warmUpPeriodSec: 10,
    coldFactor: 3,
    maxQueueingTimeMs: 500,
  },
  cluster: { thresholdType: 'global', fallbackToLocalWhenFail: true },
  degrade: { minRequestAmount: 5, statIntervalMs: 1000, maxRtMs: 0 },
  param: {
    grade: 'qps',
    durationSec: 1,
    burst: 0,
    behavior: 'reject',
    maxQueueingTimeMs: 0,
    maxTrackedValues: 4000,
  },
  system: { bbr: true },
} as const;

/** One problem found in a rule set. */
export interface RuleProblem {
  /** Where, e.g. `flow[2].count`. */
  path: string;
  /** What is wrong and what is expected. */
  reason: string;
}

type Obj = Record<string, unknown>;

class Checker {
  readonly problems: RuleProblem[] = [];

  fail(path: string, reason: string): void {
    this.problems.push({ path, reason });
  }

  object(value: unknown, path: string): Obj | undefined {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, `must be an object, got ${describe(value)}`);
      return undefined;
    }
    return value as Obj;
  }

  unknownKeys(obj: Obj, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.fail(`${path}.${key}`, `is not a field of this rule (fields: ${allowed.join(', ')})`);
      }
    }
  }

  string(obj: Obj, key: string, path: string, required: boolean): string | undefined {
    const v = obj[key];
    if (v === undefined) {
      if (required) this.fail(`${path}.${key}`, 'is required (a non-empty string)');
      return undefined;
    }
    if (typeof v !== 'string' || v.length === 0) {
      this.fail(`${path}.${key}`, `must be a non-empty string, got ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  number(
    obj: Obj,
    key: string,
    path: string,
    opts: { required?: boolean; min?: number; max?: number; gt?: number; integer?: boolean },
  ): number | undefined {
    const v = obj[key];
    if (v === undefined) {
      if (opts.required) this.fail(`${path}.${key}`, 'is required (a number)');
      return undefined;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.fail(`${path}.${key}`, `must be a finite number, got ${describe(v)}`);
      return undefined;
    }
    if (opts.integer && !Number.isInteger(v)) {
      this.fail(`${path}.${key}`, `must be an integer, got ${v}`);
      return undefined;
    }
    if (opts.min !== undefined && v < opts.min) {
      this.fail(`${path}.${key}`, `must be >= ${opts.min}, got ${v}`);
      return undefined;
    }
    if (opts.gt !== undefined && v <= opts.gt) {
      this.fail(`${path}.${key}`, `must be > ${opts.gt}, got ${v}`);
      return undefined;
    }
    if (opts.max !== undefined && v > opts.max) {
      this.fail(`${path}.${key}`, `must be <= ${opts.max}, got ${v}`);
      return undefined;
    }
    return v;
  }

  oneOf<T extends string>(
    obj: Obj,
    key: string,
    path: string,
    values: readonly T[],
    fallback: T | undefined,
  ): T | undefined {
    const v = obj[key];
    if (v === undefined) {
      if (fallback === undefined)
        this.fail(`${path}.${key}`, `is required (one of ${values.join(', ')})`);
      return fallback;
    }
    if (typeof v !== 'string' || !values.includes(v as T)) {
      this.fail(`${path}.${key}`, `must be one of ${values.join(', ')}, got ${describe(v)}`);
      return fallback;
    }
    return v as T;
  }

  boolean(obj: Obj, key: string, path: string, fallback: boolean): boolean {
    const v = obj[key];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      this.fail(`${path}.${key}`, `must be true or false, got ${describe(v)}`);
      return fallback;
    }
    return v;
  }

  list(value: unknown, path: string): unknown[] {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.fail(path, `must be an array of rules, got ${describe(value)}`);
      return [];
    }
    return value;
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

const FLOW_KEYS = [
  'resource',
  'count',
  'grade',
  'limitApp',
  'strategy',
  'refResource',
  'behavior',
  'warmUpPeriodSec',
  'coldFactor',
  'maxQueueingTimeMs',
  'cluster',
] as const;

function flowRule(c: Checker, raw: unknown, path: string): ResolvedFlowRule | undefined {
  const o = c.object(raw, path);
  if (o === undefined) return undefined;
  const before = c.problems.length;
  c.unknownKeys(o, path, FLOW_KEYS);
  const d = RULE_DEFAULTS.flow;
  const resource = c.string(o, 'resource', path, true);
  const count = c.number(o, 'count', path, { required: true, min: 0 });
  const grade = c.oneOf(o, 'grade', path, ['qps', 'concurrency'], d.grade);
  const limitApp = c.string(o, 'limitApp', path, false) ?? d.limitApp;
  const strategy = c.oneOf(o, 'strategy', path, ['direct', 'relate', 'chain'], d.strategy);
  const refResource = c.string(o, 'refResource', path, strategy !== 'direct');
  const behavior = c.oneOf(
    o,
    'behavior',
    path,
    ['reject', 'warm-up', 'rate-limiter', 'warm-up-rate-limiter'],
    d.behavior,
  );
  const warmUpPeriodSec = c.number(o, 'warmUpPeriodSec', path, { gt: 0 }) ?? d.warmUpPeriodSec;
  const coldFactor = c.number(o, 'coldFactor', path, { gt: 1 }) ?? d.coldFactor;
  const maxQueueingTimeMs =
    c.number(o, 'maxQueueingTimeMs', path, { min: 0 }) ?? d.maxQueueingTimeMs;
  if (grade === 'concurrency' && behavior !== 'reject') {
    c.fail(
      `${path}.behavior`,
      `must be 'reject' for a concurrency rule (warm-up and queueing shape QPS), got '${behavior}'`,
    );
  }
  let cluster: ResolvedFlowRule['cluster'];
  if (o.cluster !== undefined) {
    const cp = `${path}.cluster`;
    const co = c.object(o.cluster, cp);
    if (co !== undefined) {
      c.unknownKeys(co, cp, ['flowId', 'thresholdType', 'fallbackToLocalWhenFail']);
      const flowId = c.string(co, 'flowId', cp, true);
      const thresholdType = c.oneOf(
        co,
        'thresholdType',
        cp,
        ['global', 'avg-local'],
        RULE_DEFAULTS.cluster.thresholdType,
      );
      const fallbackToLocalWhenFail = c.boolean(
        co,
        'fallbackToLocalWhenFail',
        cp,
        RULE_DEFAULTS.cluster.fallbackToLocalWhenFail,
      );
      if (flowId !== undefined && thresholdType !== undefined) {
        cluster = { flowId, thresholdType, fallbackToLocalWhenFail };
      }
      if (grade === 'concurrency') c.fail(`${cp}`, 'cluster mode applies to qps rules only');
    }
  }
  if (c.problems.length > before || resource === undefined || count === undefined) return undefined;
  return {
    resource,
    count,
    grade: grade ?? d.grade,
    limitApp,
    strategy: strategy ?? d.strategy,
    ...(refResource === undefined ? {} : { refResource }),
    behavior: behavior ?? d.behavior,
    warmUpPeriodSec,
    coldFactor,
    maxQueueingTimeMs,
    ...(cluster === undefined ? {} : { cluster }),
  };
}

function degradeRule(c: Checker, raw: unknown, path: string): ResolvedDegradeRule | undefined {
  const o = c.object(raw, path);
  if (o === undefined) return undefined;
  const before = c.problems.length;
  c.unknownKeys(o, path, [
    'resource',
    'strategy',
    'threshold',
    'maxRtMs',
    'recoveryTimeoutMs',
    'minRequestAmount',
    'statIntervalMs',
  ]);
  const d = RULE_DEFAULTS.degrade;
  const resource = c.string(o, 'resource', path, true);
  const strategy = c.oneOf(
    o,
    'strategy',
    path,
    ['slow-ratio', 'error-ratio', 'error-count'],
    undefined,
  );
  const threshold =
    strategy === 'error-count'
      ? c.number(o, 'threshold', path, { required: true, min: 0 })
      : c.number(o, 'threshold', path, { required: true, min: 0, max: 1 });
  const maxRtMs =
    c.number(o, 'maxRtMs', path, { required: strategy === 'slow-ratio', min: 0 }) ?? d.maxRtMs;
  const recoveryTimeoutMs = c.number(o, 'recoveryTimeoutMs', path, { required: true, gt: 0 });
  const minRequestAmount =
    c.number(o, 'minRequestAmount', path, { min: 1, integer: true }) ?? d.minRequestAmount;
  const statIntervalMs =
    c.number(o, 'statIntervalMs', path, { min: 1, integer: true }) ?? d.statIntervalMs;
  if (
    c.problems.length > before ||
    resource === undefined ||
    strategy === undefined ||
    threshold === undefined ||
    recoveryTimeoutMs === undefined
  ) {
    return undefined;
  }
  return {
    resource,
    strategy,
    threshold,
    maxRtMs,
    recoveryTimeoutMs,
    minRequestAmount,
    statIntervalMs,
  };
}

function paramRule(c: Checker, raw: unknown, path: string): ResolvedParamFlowRule | undefined {
  const o = c.object(raw, path);
  if (o === undefined) return undefined;
  const before = c.problems.length;
  c.unknownKeys(o, path, [
    'resource',
    'paramIndex',
    'count',
    'grade',
    'durationSec',
    'burst',
    'behavior',
    'maxQueueingTimeMs',
    'items',
    'maxTrackedValues',
  ]);
  const d = RULE_DEFAULTS.param;
  const resource = c.string(o, 'resource', path, true);
  const paramIndex = c.number(o, 'paramIndex', path, { required: true, integer: true });
  const count = c.number(o, 'count', path, { required: true, min: 0 });
  const grade = c.oneOf(o, 'grade', path, ['qps', 'concurrency'], d.grade) ?? d.grade;
  const durationSec = c.number(o, 'durationSec', path, { gt: 0 }) ?? d.durationSec;
  const burst = c.number(o, 'burst', path, { min: 0, integer: true }) ?? d.burst;
  const behavior =
    c.oneOf(o, 'behavior', path, ['reject', 'rate-limiter'], d.behavior) ?? d.behavior;
  const maxQueueingTimeMs =
    c.number(o, 'maxQueueingTimeMs', path, { min: 0 }) ?? d.maxQueueingTimeMs;
  const maxTrackedValues =
    c.number(o, 'maxTrackedValues', path, { min: 1, integer: true }) ?? d.maxTrackedValues;
  const items: ResolvedParamFlowRule['items'] = [];
  c.list(o.items, `${path}.items`).forEach((item, i) => {
    const ip = `${path}.items[${i}]`;
    const io = c.object(item, ip);
    if (io === undefined) return;
    c.unknownKeys(io, ip, ['value', 'count']);
    const v = io.value;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      c.fail(`${ip}.value`, `must be a string, number or boolean, got ${describe(v)}`);
      return;
    }
    const n = c.number(io, 'count', ip, { required: true, min: 0 });
    if (n !== undefined) items.push({ value: v, count: n });
  });
  if (grade === 'concurrency' && behavior !== 'reject') {
    c.fail(`${path}.behavior`, "must be 'reject' for a concurrency rule");
  }
  if (
    c.problems.length > before ||
    resource === undefined ||
    paramIndex === undefined ||
    count === undefined
  ) {
    return undefined;
  }
  return {
    resource,
    paramIndex,
    count,
    grade,
    durationSec,
    burst,
    behavior,
    maxQueueingTimeMs,
    items,
    maxTrackedValues,
  };
}

function systemRule(c: Checker, raw: unknown, path: string): SystemRule | undefined {
  const o = c.object(raw, path);
  if (o === undefined) return undefined;
  const before = c.problems.length;
  c.unknownKeys(o, path, [
    'maxQps',
    'maxConcurrency',
    'maxAvgRtMs',
    'maxCpuUsage',
    'maxEventLoopLagMs',
    'maxLoad',
    'bbr',
  ]);
  const rule: SystemRule = {};
  const maxQps = c.number(o, 'maxQps', path, { min: 0 });
  const maxConcurrency = c.number(o, 'maxConcurrency', path, { min: 0, integer: true });
  const maxAvgRtMs = c.number(o, 'maxAvgRtMs', path, { gt: 0 });
  const maxCpuUsage = c.number(o, 'maxCpuUsage', path, { gt: 0, max: 1 });
  const maxEventLoopLagMs = c.number(o, 'maxEventLoopLagMs', path, { gt: 0 });
  const maxLoad = c.number(o, 'maxLoad', path, { gt: 0 });
  if (maxQps !== undefined) rule.maxQps = maxQps;
  if (maxConcurrency !== undefined) rule.maxConcurrency = maxConcurrency;
  if (maxAvgRtMs !== undefined) rule.maxAvgRtMs = maxAvgRtMs;
  if (maxCpuUsage !== undefined) rule.maxCpuUsage = maxCpuUsage;
  if (maxEventLoopLagMs !== undefined) rule.maxEventLoopLagMs = maxEventLoopLagMs;
  if (maxLoad !== undefined) rule.maxLoad = maxLoad;
  rule.bbr = c.boolean(o, 'bbr', path, RULE_DEFAULTS.system.bbr);
  if (Object.keys(rule).length === 1 && c.problems.length === before) {
    c.fail(
      path,
      'sets no limit: give at least one of maxQps, maxConcurrency, maxAvgRtMs, maxCpuUsage, maxEventLoopLagMs, maxLoad',
    );
  }
  return c.problems.length > before ? undefined : rule;
}

function authorityRule(c: Checker, raw: unknown, path: string): AuthorityRule | undefined {
  const o = c.object(raw, path);
  if (o === undefined) return undefined;
  const before = c.problems.length;
  c.unknownKeys(o, path, ['resource', 'strategy', 'origins']);
  const resource = c.string(o, 'resource', path, true);
  const strategy = c.oneOf(o, 'strategy', path, ['allow', 'deny'], undefined);
  const origins: string[] = [];
  if (!Array.isArray(o.origins)) {
    c.fail(`${path}.origins`, `must be an array of caller app names, got ${describe(o.origins)}`);
  } else {
    o.origins.forEach((v, i) => {
      if (typeof v !== 'string' || v.length === 0) {
        c.fail(`${path}.origins[${i}]`, `must be a non-empty string, got ${describe(v)}`);
      } else origins.push(v);
    });
  }
  if (c.problems.length > before || resource === undefined || strategy === undefined)
    return undefined;
  return { resource, strategy, origins };
}

/**
 * Checks a whole rule set and returns it with defaults filled in. Throws a PeakError
 * (PEAK_GUARD_INVALID_RULES) listing every problem with its path when anything is wrong;
 * nothing of an invalid set is used.
 */
export function validateRules(input: unknown): ResolvedGuardRules {
  const c = new Checker();
  const out: ResolvedGuardRules = { flow: [], degrade: [], param: [], system: [], authority: [] };
  const root = c.object(input, 'rules');
  if (root !== undefined) {
    c.unknownKeys(root, 'rules', ['flow', 'degrade', 'param', 'system', 'authority']);
    c.list(root.flow, 'flow').forEach((r, i) => {
      const v = flowRule(c, r, `flow[${i}]`);
      if (v) out.flow.push(v);
    });
    c.list(root.degrade, 'degrade').forEach((r, i) => {
      const v = degradeRule(c, r, `degrade[${i}]`);
      if (v) out.degrade.push(v);
    });
    c.list(root.param, 'param').forEach((r, i) => {
      const v = paramRule(c, r, `param[${i}]`);
      if (v) out.param.push(v);
    });
    c.list(root.system, 'system').forEach((r, i) => {
      const v = systemRule(c, r, `system[${i}]`);
      if (v) out.system.push(v);
    });
    c.list(root.authority, 'authority').forEach((r, i) => {
      const v = authorityRule(c, r, `authority[${i}]`);
      if (v) out.authority.push(v);
    });
    const flowIds = new Map<string, number>();
    out.flow.forEach((r, i) => {
      if (r.cluster === undefined) return;
      const seen = flowIds.get(r.cluster.flowId);
      if (seen !== undefined) {
        c.fail(
          `flow[${i}].cluster.flowId`,
          `'${r.cluster.flowId}' is already used by flow[${seen}]; each cluster rule needs its own flowId`,
        );
      } else flowIds.set(r.cluster.flowId, i);
    });
  }
  if (c.problems.length > 0) {
    const first = c.problems[0]!;
    const more = c.problems.length > 1 ? ` (and ${c.problems.length - 1} more problem(s))` : '';
    throw new PeakError(
      ErrorCodes.GUARD_INVALID_RULES,
      `guard: rule set refused, the rules in force stay: ${first.path} ${first.reason}${more}`,
      { details: { path: first.path, problems: c.problems } },
    );
  }
  return out;
}
