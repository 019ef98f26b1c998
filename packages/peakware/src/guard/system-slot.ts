/**
 * System protection (Sentinel's SystemSlot / SystemRuleManager) for inbound calls: refuse
 * when the process as a whole is past its QPS, concurrency or average RT, when the CPU is
 * past its limit, or when event-loop lag or load is past its limit and the BBR check says
 * calls are queueing (in flight > max success QPS × min RT).
 */
import { BlockError } from './block-error.js';
import type { Entry } from './entry.js';
import type { ProcessorSlot } from './processor-slot.js';
import type { SystemRule } from './rule-types.js';
import type { StatNode } from './stat-node.js';
import type { SystemSampler } from './system-sampler.js';

/** The merged thresholds of all system rules (smallest of each field). */
export interface SystemLimits {
  maxQps: number;
  maxConcurrency: number;
  maxAvgRtMs: number;
  maxCpuUsage: number;
  maxEventLoopLagMs: number;
  maxLoad: number;
  bbr: boolean;
}

/** Merges system rules: the smallest value of each field; undefined when there are none. */
export function mergeSystemRules(rules: readonly SystemRule[]): SystemLimits | undefined {
  if (rules.length === 0) return undefined;
  const min = (pick: (r: SystemRule) => number | undefined) => {
    let v = Number.POSITIVE_INFINITY;
    for (const r of rules) {
      const x = pick(r);
      if (x !== undefined && x < v) v = x;
    }
    return v;
  };
  return {
    maxQps: min((r) => r.maxQps),
    maxConcurrency: min((r) => r.maxConcurrency),
    maxAvgRtMs: min((r) => r.maxAvgRtMs),
    maxCpuUsage: min((r) => r.maxCpuUsage),
    maxEventLoopLagMs: min((r) => r.maxEventLoopLagMs),
    maxLoad: min((r) => r.maxLoad),
    bbr: rules.every((r) => r.bbr !== false),
  };
}

/** True when the limits need the sampler (CPU, lag or load). */
export function needsSampler(limits: SystemLimits | undefined): boolean {
  return (
    limits !== undefined &&
    (Number.isFinite(limits.maxCpuUsage) ||
      Number.isFinite(limits.maxEventLoopLagMs) ||
      Number.isFinite(limits.maxLoad))
  );
}

/** Sentinel's default when no call completed yet: a large RT, so BBR does not pass by accident. */
const NO_RT_MS = 5000;

/** The system protection slot. */
export class SystemSlot implements ProcessorSlot {
  /** Limits in force (undefined: no system rules). */
  limits: SystemLimits | undefined;

  constructor(
    readonly inbound: StatNode,
    readonly sampler: SystemSampler,
  ) {}

  entry(entry: Entry): void {
    const l = this.limits;
    if (l === undefined || !entry.inbound) return;
    const node = this.inbound;
    if (node.passQps() + 1 > l.maxQps) this.#block(entry, `system QPS over ${l.maxQps}`);
    if (node.concurrency + 1 > l.maxConcurrency) {
      this.#block(entry, `system concurrency over ${l.maxConcurrency}`);
    }
    if (Number.isFinite(l.maxAvgRtMs)) {
      const rt = node.second.rtAvg();
      if (rt > l.maxAvgRtMs)
        this.#block(entry, `system average RT ${rt.toFixed(1)} ms over ${l.maxAvgRtMs} ms`);
    }
    const s = this.sampler.sample;
    if (s.eventLoopLagMs > l.maxEventLoopLagMs && !this.#bbrPasses(l)) {
      this.#block(
        entry,
        `event-loop lag ${s.eventLoopLagMs.toFixed(1)} ms over ${l.maxEventLoopLagMs} ms and calls are queueing`,
      );
    }
    if (s.load > l.maxLoad && !this.#bbrPasses(l)) {
      this.#block(entry, `load ${s.load.toFixed(2)} over ${l.maxLoad} and calls are queueing`);
    }
    if (s.cpuUsage > l.maxCpuUsage) {
      this.#block(
        entry,
        `CPU usage ${(s.cpuUsage * 100).toFixed(0)}% over ${(l.maxCpuUsage * 100).toFixed(0)}%`,
      );
    }
  }

  /** The BBR check: true while in-flight calls fit max success QPS × min RT. */
  #bbrPasses(l: SystemLimits): boolean {
    if (!l.bbr) return false;
    const node = this.inbound;
    const current = node.concurrency;
    const minRt = node.second.rtMin();
    const estimate =
      (node.maxSuccessQps() * (Number.isNaN(minRt) ? NO_RT_MS : Math.max(minRt, 1))) / 1000;
    return !(current > 1 && current > estimate);
  }

  #block(entry: Entry, reason: string): never {
    throw BlockError.create('system', entry.resource, entry.origin, reason, this.limits);
  }

  exit(): void {}
}
