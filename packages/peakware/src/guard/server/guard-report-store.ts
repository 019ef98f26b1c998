/**
 * What the control plane keeps of guard reports: per app and instance, the rules in force
 * and the last `keepSeconds` of per-second metrics per resource, in memory and bounded.
 * `peak guard rules` and `peak guard stats` read it. One node only: reports go to the node
 * the load balancer picked (see the README for multi-node).
 */
import type { GuardRules } from '../rule-types.js';

/** One resource's metrics for one second, as reported. */
export interface ReportedMetric {
  resource: string;
  second: number;
  pass: number;
  block: number;
  success: number;
  error: number;
  rtAvg: number;
  rtMin: number;
  concurrency: number;
}

/** One report from one instance. */
export interface GuardReport {
  app: string;
  instance: string;
  rules: GuardRules;
  metrics: ReportedMetric[];
}

interface InstanceState {
  lastSeen: number;
  rules: GuardRules;
  series: Map<string, ReportedMetric[]>;
}

/** A row of `peak guard stats`: one second, summed over instances. */
export interface StatsRow {
  second: number;
  pass: number;
  block: number;
  success: number;
  error: number;
  rtAvg: number;
  concurrency: number;
  instances: number;
}

/** Bounded in-memory store of guard reports. */
export class GuardReportStore {
  readonly #apps = new Map<string, Map<string, InstanceState>>();

  constructor(
    readonly keepSeconds = 300,
    readonly maxApps = 1000,
    readonly maxInstances = 1000,
    readonly maxResources = 1000,
  ) {}

  /** Takes one report. Returns false when a bound refused it. */
  accept(report: GuardReport, now = Date.now()): boolean {
    let app = this.#apps.get(report.app);
    if (app === undefined) {
      if (this.#apps.size >= this.maxApps) return false;
      app = new Map();
      this.#apps.set(report.app, app);
    }
    let inst = app.get(report.instance);
    if (inst === undefined) {
      if (app.size >= this.maxInstances) return false;
      inst = { lastSeen: now, rules: {}, series: new Map() };
      app.set(report.instance, inst);
    }
    inst.lastSeen = now;
    inst.rules = report.rules;
    const cutoff = now - this.keepSeconds * 1000;
    for (const m of report.metrics) {
      let series = inst.series.get(m.resource);
      if (series === undefined) {
        if (inst.series.size >= this.maxResources) continue;
        series = [];
        inst.series.set(m.resource, series);
      }
      series.push(m);
    }
    for (const series of inst.series.values()) {
      let drop = 0;
      while (drop < series.length && series[drop]!.second < cutoff) drop++;
      if (drop > 0) series.splice(0, drop);
    }
    return true;
  }

  /** Rules in force per instance, optionally of one app. */
  rules(
    appName?: string,
  ): { app: string; instance: string; lastSeen: number; rules: GuardRules }[] {
    const out: { app: string; instance: string; lastSeen: number; rules: GuardRules }[] = [];
    for (const [app, instances] of this.#apps) {
      if (appName !== undefined && app !== appName) continue;
      for (const [instance, s] of instances)
        out.push({ app, instance, lastSeen: s.lastSeen, rules: s.rules });
    }
    return out;
  }

  /** Per-second stats of one resource over the last `seconds`, summed over instances. */
  stats(resource: string, seconds: number, appName?: string, now = Date.now()): StatsRow[] {
    const cutoff = now - seconds * 1000;
    const rows = new Map<number, StatsRow & { rtSum: number }>();
    for (const [app, instances] of this.#apps) {
      if (appName !== undefined && app !== appName) continue;
      for (const s of instances.values()) {
        for (const m of s.series.get(resource) ?? []) {
          if (m.second < cutoff) continue;
          let row = rows.get(m.second);
          if (row === undefined) {
            row = {
              second: m.second,
              pass: 0,
              block: 0,
              success: 0,
              error: 0,
              rtAvg: 0,
              rtSum: 0,
              concurrency: 0,
              instances: 0,
            };
            rows.set(m.second, row);
          }
          row.pass += m.pass;
          row.block += m.block;
          row.success += m.success;
          row.error += m.error;
          row.rtSum += m.rtAvg * (m.success + m.error);
          row.concurrency += m.concurrency;
          row.instances++;
        }
      }
    }
    return [...rows.values()]
      .sort((a, b) => a.second - b.second)
      .map(({ rtSum, ...row }) => ({
        ...row,
        rtAvg: row.success + row.error === 0 ? 0 : rtSum / (row.success + row.error),
      }));
  }
}
