/**
 * Capacity planning, Alibaba's rule: a service needs forecast QPS ÷ one instance's measured
 * capacity, plus a buffer, instances. The forecast of each service comes from the front
 * door's target through the call graph: a service's QPS is the sum over its callers of the
 * caller's QPS × (calls from caller to it ÷ the caller's own inbound calls), the fan-out
 * ratios telemetry measured on real traffic.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';

/** The pass mark of a capacity probe step. */
export interface CapacitySla {
  p99Ms: number;
  /** Most share of failed calls, 0..1. */
  errorRate: number;
  /** Most CPU of the instance, 0..1 of one core (optional). */
  cpu?: number;
}

/** One step of a probe: the weight given, what the instance did. */
export interface CapacityStep {
  weight: number;
  qps: number;
  p99Ms: number;
  errorRate: number;
  cpu?: number;
  passed: boolean;
}

/** A service's measured capacity: one instance's max QPS within the SLA. */
export interface CapacityFigure {
  service: string;
  instance: string;
  maxQps: number;
  /** p99 at that QPS. */
  p99Ms?: number;
  sla: CapacitySla;
  steps: CapacityStep[];
  /** ISO time, set by the control plane. */
  measuredAt?: string;
}

/** A front-door target: `buy=10000/s` → `{ service: 'buy', qps: 10000 }`. */
export interface CapacityTarget {
  service: string;
  qps: number;
}

/** One caller → callee edge of the call graph (telemetry's topology). */
export interface CallEdge {
  caller: string;
  callee: string;
  calls: number;
}

/** One service's row of the plan. */
export interface PlanRow {
  service: string;
  /** Forecast QPS from the targets through the call graph. */
  qps: number;
  /** One instance's measured max QPS (undefined: never probed). */
  perInstanceQps: number | undefined;
  /** qps ÷ perInstanceQps, before the buffer. */
  minimum: number | undefined;
  /** With the buffer, rounded up: the instances to run. */
  instances: number | undefined;
}

/** The plan. */
export interface CapacityPlan {
  targets: CapacityTarget[];
  /** The buffer applied, 0.2 = 20 % more than the minimum. */
  buffer: number;
  rows: PlanRow[];
  /** Services on the path that were never probed (no instance count for them). */
  unmeasured: string[];
}

function invalid(message: string, input: string): PeakError {
  return new PeakError(ErrorCodes.STRESS_INVALID, message, { details: { input } });
}

/** Parses `buy=10000/s[,browse=2k/s]` (the `/s` optional, `k` = 1000). */
export function parseTargets(text: string): CapacityTarget[] {
  const out: CapacityTarget[] = [];
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const m = /^([\w.:/-]+)=([\d.]+)(k?)(?:\/s)?$/.exec(part);
    if (m === null)
      throw invalid(
        `a target is service=QPS/s (e.g. buy=10000/s), got ${JSON.stringify(part)}`,
        'target',
      );
    const qps = Number(m[2]) * (m[3] === 'k' ? 1000 : 1);
    if (!(qps > 0)) throw invalid(`the QPS of ${m[1]} must be above 0`, 'target');
    out.push({ service: m[1]!, qps });
  }
  if (out.length === 0)
    throw invalid('give at least one target, e.g. --target "buy=10000/s"', 'target');
  return out;
}

/**
 * Forecast QPS per service: targets pushed through the fan-out ratios. `inbound` is each
 * service's own calls received over the same window as the edges (its server spans);
 * without it, a caller's inbound is the sum of its incoming edges. A cycle is cut where it
 * closes (its back edge adds nothing).
 */
export function forecastQps(
  targets: readonly CapacityTarget[],
  edges: readonly CallEdge[],
  inbound: ReadonlyMap<string, number> = new Map(),
): Map<string, number> {
  const out = new Map<string, number>();
  const callees = new Map<string, CallEdge[]>();
  const incoming = new Map<string, number>();
  for (const e of edges) {
    callees.set(e.caller, [...(callees.get(e.caller) ?? []), e]);
    incoming.set(e.callee, (incoming.get(e.callee) ?? 0) + e.calls);
  }
  const visit = (service: string, qps: number, path: Set<string>) => {
    out.set(service, (out.get(service) ?? 0) + qps);
    const inCalls = inbound.get(service) ?? incoming.get(service) ?? 0;
    const outs = callees.get(service) ?? [];
    if (outs.length === 0) return;
    if (!(inCalls > 0))
      throw invalid(
        `service ${service} calls others but the call graph shows no calls into it; give its inbound calls`,
        'target',
      );
    path.add(service);
    for (const e of outs) if (!path.has(e.callee)) visit(e.callee, (qps * e.calls) / inCalls, path);
    path.delete(service);
  };
  for (const t of targets) visit(t.service, t.qps, new Set());
  return out;
}

/** The instances each service needs: ceil(forecast ÷ one instance's max QPS × (1 + buffer)). */
export function planCapacity(options: {
  targets: readonly CapacityTarget[];
  edges: readonly CallEdge[];
  inbound?: ReadonlyMap<string, number>;
  capacity: readonly Pick<CapacityFigure, 'service' | 'maxQps'>[];
  /** Default 0.2. */
  buffer?: number;
}): CapacityPlan {
  const buffer = options.buffer ?? 0.2;
  if (!(buffer >= 0 && buffer <= 10))
    throw invalid('the buffer must be from 0 to 10 (0.2 = 20 %)', 'buffer');
  const qps = forecastQps(options.targets, options.edges, options.inbound);
  const perInstance = new Map(options.capacity.map((c) => [c.service, c.maxQps]));
  const rows: PlanRow[] = [...qps.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([service, q]) => {
      const cap = perInstance.get(service);
      const minimum = cap === undefined || !(cap > 0) ? undefined : q / cap;
      return {
        service,
        qps: Math.round(q * 100) / 100,
        perInstanceQps: cap,
        minimum: minimum === undefined ? undefined : Math.round(minimum * 1000) / 1000,
        // a hair under the next integer is float noise, not another instance
        instances:
          minimum === undefined ? undefined : Math.max(1, Math.ceil(minimum * (1 + buffer) - 1e-9)),
      };
    });
  return {
    targets: [...options.targets],
    buffer,
    rows,
    unmeasured: rows.filter((r) => r.perInstanceQps === undefined).map((r) => r.service),
  };
}
