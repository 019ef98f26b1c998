/**
 * One report from the reports of a run's agents: totals and per-second figures summed,
 * latency percentiles from the agents' HDR histograms added together (never averaged),
 * steps and errors summed by name.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';
import { decodeHistogram, encodeHistogram, newHistogram, summarize } from './latency-recorder.js';
import type { SecondFigures, StressReport } from './stress-report.js';

/** Merges agents' reports of one run. */
export function mergeReports(reports: readonly StressReport[]): StressReport {
  const first = reports[0];
  if (first === undefined)
    throw new PeakError(ErrorCodes.STRESS_INVALID, 'no reports to merge', {
      details: { input: 'reports' },
    });
  if (reports.length === 1) return first;
  const all = newHistogram();
  for (const r of reports) all.add(decodeHistogram(r.histogram));
  const sum = (f: (r: StressReport) => number) => reports.reduce((s, r) => s + f(r), 0);
  const durationS = Math.max(...reports.map((r) => r.durationS));
  const requests = sum((r) => r.totals.requests);
  const dropped = sum((r) => r.totals.dropped);
  const errors = sum((r) => r.totals.errors);
  const seconds = new Map<number, SecondFigures>();
  for (const r of reports)
    for (const x of r.seconds) {
      const y = seconds.get(x.t);
      if (y === undefined) seconds.set(x.t, { ...x });
      else {
        y.target += x.target;
        y.started += x.started;
        y.ok += x.ok;
        y.errors += x.errors;
        y.dropped += x.dropped;
        y.inFlight += x.inFlight;
        // percentiles of a second cannot be summed: the worst agent's is kept
        y.p50Ms = Math.max(y.p50Ms, x.p50Ms);
        y.p90Ms = Math.max(y.p90Ms, x.p90Ms);
        y.p99Ms = Math.max(y.p99Ms, x.p99Ms);
        y.maxMs = Math.max(y.maxMs, x.maxMs);
      }
    }
  const steps = new Map<string, StressReport['steps'][number]>();
  for (const r of reports)
    for (const s of r.steps) {
      const t = steps.get(s.name);
      if (t === undefined) steps.set(s.name, { ...s });
      else {
        t.ok += s.ok;
        t.errors += s.errors;
        t.latency = {
          ...t.latency,
          count: t.latency.count + s.latency.count,
          p99Ms: Math.max(t.latency.p99Ms, s.latency.p99Ms),
          maxMs: Math.max(t.latency.maxMs, s.latency.maxMs),
        };
      }
    }
  const errorsBy = new Map<string, StressReport['errors'][number]>();
  for (const r of reports)
    for (const e of r.errors) {
      const k = `${e.step}\u0000${e.message}`;
      const f = errorsBy.get(k);
      if (f === undefined) errorsBy.set(k, { ...e });
      else f.count += e.count;
    }
  const stopped = reports.find((r) => r.stopReason !== 'completed');
  return {
    ...first,
    startedAt: Math.min(...reports.map((r) => r.startedAt)),
    durationS,
    stopReason: stopped?.stopReason ?? 'completed',
    stopDetail: stopped?.stopDetail,
    totals: {
      iterations: sum((r) => r.totals.iterations),
      completed: sum((r) => r.totals.completed),
      requests,
      ok: sum((r) => r.totals.ok),
      errors,
      dropped,
      throughput: Math.round((requests / Math.max(durationS, 0.001)) * 10) / 10,
      errorRate:
        requests + dropped === 0
          ? 0
          : Math.round(((errors + dropped) / (requests + dropped)) * 1e6) / 1e6,
    },
    latency: summarize(all),
    histogram: encodeHistogram(all),
    steps: [...steps.values()],
    stages: [],
    seconds: [...seconds.values()].sort((a, b) => a.t - b.t),
    errors: [...errorsBy.values()].sort((a, b) => b.count - a.count),
    generator: {
      cpuUsPerRequest: Math.round(
        sum((r) => r.generator.cpuUsPerRequest * r.totals.requests) / Math.max(1, requests),
      ),
      maxSendLagMs: Math.max(...reports.map((r) => r.generator.maxSendLagMs)),
      agents: sum((r) => r.generator.agents),
    },
  };
}
