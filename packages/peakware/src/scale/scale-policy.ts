/**
 * A service's scaling policy: a config item `scale/<service>` of its app, JSON, in the
 * manner of Kubernetes' HPA (target, min/max, stabilisation windows, tolerance) and KEDA
 * (queue backlog per instance):
 *
 * ```json
 * { "metric": "cpu", "target": 60, "min": 2, "max": 10, "step": 4,
 *   "cooldownMs": 30000, "scaleUpWindowMs": 0, "scaleDownWindowMs": 300000 }
 * ```
 *
 * | metric | the figure | per |
 * |---|---|---|
 * | `cpu` | CPU use, percent of one core (the supervisors measure it) | instance, averaged |
 * | `rt-p99` | RT p99 from the pushed per-second metrics, ms | service |
 * | `qps` | calls per second from the pushed metrics, over the instances that pushed | instance |
 * | `mq-backlog` | messages stored and not yet acked of `mq.group` on `mq.topic` | instance |
 *
 * The item carries {@link SCALE_POLICY_SCHEMA}, so `peak config set` refuses a wrong type or
 * an unknown metric with its path; {@link checkScalePolicy} adds what a JSON Schema cannot
 * say (min ≤ max), and the evaluator checks it again before acting.
 */

/** The metrics a policy scales on. */
export const SCALE_METRICS = ['cpu', 'rt-p99', 'qps', 'mq-backlog'] as const;

/** One of {@link SCALE_METRICS}. */
export type ScaleMetric = (typeof SCALE_METRICS)[number];

/** The config group of policy items (the key is the service). */
export const POLICY_GROUP = 'scale';

/** A scaling policy as written (defaults in {@link POLICY_DEFAULTS}). */
export interface ScalePolicy {
  metric: ScaleMetric;
  /** The figure to hold (per instance for cpu, qps and mq-backlog). */
  target: number;
  /** Fewest instances. Default 1. */
  min?: number;
  /** Most instances. */
  max: number;
  /** Most instances added or removed by one decision. Default 4. */
  step?: number;
  /** Least time between two changes, ms (no flapping). Default 30 000. */
  cooldownMs?: number;
  /** A scale-out takes the lowest recommendation of this window, ms. Default 0. */
  scaleUpWindowMs?: number;
  /** A scale-in takes the highest recommendation of this window, ms. Default 300 000. */
  scaleDownWindowMs?: number;
  /** No change while figure / target is within 1 ± this. Default 0.1. */
  tolerance?: number;
  /** rt-p99 and qps: the figures of the last this many ms. Default 30 000. */
  windowMs?: number;
  /** rt-p99 and qps: the service name the metrics are pushed under. Default: the service. */
  telemetryService?: string;
  /** rt-p99 and qps: one resource only. Default: the service's inbound total. */
  resource?: string;
  /** mq-backlog: the consumer group and topic. */
  mq?: { group: string; topic: string };
}

/** A policy with every default applied. */
export type ResolvedPolicy = Required<Omit<ScalePolicy, 'telemetryService' | 'resource' | 'mq'>> &
  Pick<ScalePolicy, 'telemetryService' | 'resource' | 'mq'>;

/** The defaults of {@link ScalePolicy}, in one place. */
export const POLICY_DEFAULTS = {
  min: 1,
  step: 4,
  cooldownMs: 30_000,
  scaleUpWindowMs: 0,
  scaleDownWindowMs: 300_000,
  tolerance: 0.1,
  windowMs: 30_000,
} as const;

const MS = { type: 'integer', minimum: 0, maximum: 86_400_000 } as const;
const COUNT = { type: 'integer', minimum: 0, maximum: 1000 } as const;
const NAME = { type: 'string', pattern: '^[A-Za-z0-9_.:/-]{1,256}$' } as const;

/** The JSON Schema every policy item carries (types, ranges, the metric's name). */
export const SCALE_POLICY_SCHEMA = {
  type: 'object',
  required: ['metric', 'target', 'max'],
  additionalProperties: false,
  properties: {
    metric: { enum: [...SCALE_METRICS] },
    target: { type: 'number', exclusiveMinimum: 0 },
    min: COUNT,
    max: { type: 'integer', minimum: 1, maximum: 1000 },
    step: { type: 'integer', minimum: 1, maximum: 1000 },
    cooldownMs: MS,
    scaleUpWindowMs: MS,
    scaleDownWindowMs: MS,
    tolerance: { type: 'number', minimum: 0, maximum: 1 },
    windowMs: { type: 'integer', minimum: 1000, maximum: 3_600_000 },
    telemetryService: NAME,
    resource: NAME,
    mq: {
      type: 'object',
      required: ['group', 'topic'],
      additionalProperties: false,
      properties: { group: NAME, topic: NAME },
    },
  },
} as const;

/** A problem of a policy: where (`$.min`) and what. */
export interface PolicyProblem {
  path: string;
  reason: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function intIn(v: unknown, lo: number, hi: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
}

/**
 * Every problem of a policy value, each with its path (empty: valid): what the schema
 * checks, and what it cannot (min ≤ max, an mq-backlog policy's group and topic).
 */
export function checkScalePolicy(value: unknown): PolicyProblem[] {
  if (!isObject(value))
    return [{ path: '$', reason: 'must be an object { metric, target, max, ... }' }];
  const out: PolicyProblem[] = [];
  const known = Object.keys(SCALE_POLICY_SCHEMA.properties);
  for (const k of Object.keys(value))
    if (!known.includes(k))
      out.push({ path: `$.${k}`, reason: `is not a policy field (${known.join(', ')})` });
  if (!SCALE_METRICS.includes(value.metric as ScaleMetric))
    out.push({
      path: '$.metric',
      reason: `must be one of ${SCALE_METRICS.join(', ')}, got ${JSON.stringify(value.metric)}`,
    });
  if (!(typeof value.target === 'number' && value.target > 0))
    out.push({ path: '$.target', reason: 'must be a number above 0' });
  if (value.min !== undefined && !intIn(value.min, 0, 1000))
    out.push({ path: '$.min', reason: 'must be an integer from 0 to 1000' });
  if (!intIn(value.max, 1, 1000))
    out.push({ path: '$.max', reason: 'must be an integer from 1 to 1000' });
  const min = value.min ?? POLICY_DEFAULTS.min;
  if (intIn(min, 0, 1000) && intIn(value.max, 1, 1000) && (min as number) > (value.max as number))
    out.push({
      path: '$.min',
      reason: `must not be above max (${String(min)} > ${String(value.max)})`,
    });
  if (value.step !== undefined && !intIn(value.step, 1, 1000))
    out.push({ path: '$.step', reason: 'must be an integer from 1 to 1000' });
  for (const k of ['cooldownMs', 'scaleUpWindowMs', 'scaleDownWindowMs'] as const)
    if (value[k] !== undefined && !intIn(value[k], 0, 86_400_000))
      out.push({ path: `$.${k}`, reason: 'must be an integer of ms from 0 to 86400000' });
  if (value.windowMs !== undefined && !intIn(value.windowMs, 1000, 3_600_000))
    out.push({ path: '$.windowMs', reason: 'must be an integer of ms from 1000 to 3600000' });
  if (
    value.tolerance !== undefined &&
    !(typeof value.tolerance === 'number' && value.tolerance >= 0 && value.tolerance <= 1)
  )
    out.push({ path: '$.tolerance', reason: 'must be a number from 0 to 1' });
  for (const k of ['telemetryService', 'resource'] as const)
    if (value[k] !== undefined && typeof value[k] !== 'string')
      out.push({ path: `$.${k}`, reason: 'must be a name' });
  if (value.metric === 'mq-backlog') {
    const mq = value.mq;
    if (!isObject(mq) || typeof mq.group !== 'string' || typeof mq.topic !== 'string')
      out.push({
        path: '$.mq',
        reason: 'an mq-backlog policy needs { "group": ..., "topic": ... }',
      });
  }
  return out;
}

/** The policy with its defaults applied (check it first). */
export function resolvePolicy(p: ScalePolicy): ResolvedPolicy {
  return {
    ...POLICY_DEFAULTS,
    ...p,
  } as ResolvedPolicy;
}
