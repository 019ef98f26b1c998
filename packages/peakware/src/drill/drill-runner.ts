/**
 * `peak drill run`: a drill is a sequence of steps, each injecting faults and holding them,
 * with steady-state checks (SLA rules: p99, error rate, and custom checks such as a books
 * check) before, during and after. Before: a failing check refuses the drill (nothing is
 * injected). During: the checks run every `checkEveryMs`; the first one that breaks stops
 * every fault of the drill at once and the drill is aborted. After: the faults are stopped
 * and the checks polled until all pass (the recovery time) or `recoverMs` passes. The
 * timeline says what was injected, what the checks saw, which alerts fired and how long
 * recovery took. The runner talks to the control plane through {@link DrillPorts}, so the
 * CLI (through `AdminClient`) and a program (the shop) run it alike; faults end by
 * themselves after their duration even if the runner dies.
 */
import { errorMessage } from '../core/errors.js';
import { checkFaultRequest, type FaultRequest } from './fault-spec.js';

/** One steady-state check. */
export type SteadyCheck =
  | { kind: 'p99'; service: string; resource?: string; maxMs: number; seconds?: number }
  | { kind: 'error-rate'; service: string; resource?: string; max: number; seconds?: number }
  | { kind: 'custom'; name: string; command?: string };

/** One step: faults injected together and held. */
export interface DrillStep {
  name: string;
  faults: FaultRequest[];
  /** How long the step holds before the next one, ms. */
  holdMs: number;
}

/** A drill file. */
export interface DrillSpec {
  name: string;
  app: string;
  checks: SteadyCheck[];
  steps: DrillStep[];
  /** Checks during the steps, every this many ms. Default 1000. */
  checkEveryMs?: number;
  /** How long the system has to pass every check again after the faults, ms. Default 30 000. */
  recoverMs?: number;
}

/** What a check saw. */
export interface CheckResult {
  check: string;
  ok: boolean;
  detail: string;
}

/** One line of the timeline. */
export interface TimelineEvent {
  /** Milliseconds since the drill started. */
  atMs: number;
  what:
    | 'check-before'
    | 'inject'
    | 'check'
    | 'abort'
    | 'stop'
    | 'recovered'
    | 'not-recovered'
    | 'alert'
    | 'refused';
  detail: string;
}

/** The drill's outcome. */
export interface DrillReport {
  drill: string;
  app: string;
  /** `passed`: every check held; `aborted`: one broke during a step; `refused`: before. */
  outcome: 'passed' | 'aborted' | 'refused';
  /** The check that broke, if any. */
  broken?: CheckResult;
  /** Time from stopping the faults to every check passing again (null: not within `recoverMs`). */
  recoveryMs: number | null;
  injected: string[];
  alerts: string[];
  timeline: TimelineEvent[];
}

/** What the runner needs of the control plane (and the world). */
export interface DrillPorts {
  inject(app: string, faults: FaultRequest[]): Promise<{ faults: { id: string }[] }>;
  stop(app: string, drill: string): Promise<{ stopped: string[] }>;
  /** Error rate (0-1), p99 (ms, when reported) and calls per second of a service (resource) over `seconds`. */
  metrics(
    service: string,
    resource: string | undefined,
    seconds: number,
  ): Promise<{ p99Ms?: number; errorRate: number; qps: number }>;
  /** Runs a custom check. */
  custom(check: { name: string; command?: string }): Promise<{ ok: boolean; detail: string }>;
  /** Alerts fired since `sinceMs` (epoch ms), as one line each; optional. */
  alerts?(sinceMs: number): Promise<string[]>;
  /** Epoch ms. */
  clock(): number;
  sleep(ms: number): Promise<void>;
}

/** Problems of a drill file, empty when valid. */
export function checkDrillSpec(input: unknown): string[] {
  const d = input as Partial<DrillSpec> | null;
  if (typeof d !== 'object' || d === null) return ['$: a drill is an object'];
  const out: string[] = [];
  if (typeof d.name !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(d.name))
    out.push('name: 1-128 of [A-Za-z0-9_.-]');
  if (typeof d.app !== 'string' || d.app === '')
    out.push('app: the app whose instances it targets');
  if (!Array.isArray(d.checks)) out.push('checks: a list (may be empty)');
  else
    for (const [i, c] of d.checks.entries()) {
      if (c?.kind === 'p99' && (typeof c.service !== 'string' || typeof c.maxMs !== 'number'))
        out.push(`checks[${i}]: p99 needs service and maxMs`);
      else if (
        c?.kind === 'error-rate' &&
        (typeof c.service !== 'string' || typeof c.max !== 'number')
      )
        out.push(`checks[${i}]: error-rate needs service and max (0-1)`);
      else if (c?.kind === 'custom' && typeof c.name !== 'string')
        out.push(`checks[${i}]: custom needs a name`);
      else if (!['p99', 'error-rate', 'custom'].includes(c?.kind))
        out.push(`checks[${i}].kind: p99, error-rate or custom`);
    }
  if (!Array.isArray(d.steps) || d.steps.length === 0) out.push('steps: at least one step');
  else
    for (const [i, s] of d.steps.entries()) {
      if (typeof s?.holdMs !== 'number' || s.holdMs < 0) out.push(`steps[${i}].holdMs: ms, >= 0`);
      if (!Array.isArray(s?.faults) || s.faults.length === 0)
        out.push(`steps[${i}].faults: at least one fault`);
      else
        for (const [j, f] of s.faults.entries())
          for (const p of checkFaultRequest(f)) out.push(`steps[${i}].faults[${j}].${p}`);
    }
  return out;
}

function label(c: SteadyCheck): string {
  if (c.kind === 'custom') return `custom ${c.name}`;
  const what = `${c.service}${c.resource === undefined ? '' : ` ${c.resource}`}`;
  return c.kind === 'p99' ? `p99 ${what} <= ${c.maxMs} ms` : `error rate ${what} <= ${c.max}`;
}

async function runCheck(ports: DrillPorts, c: SteadyCheck): Promise<CheckResult> {
  try {
    if (c.kind === 'custom') {
      const r = await ports.custom(c);
      return { check: label(c), ...r };
    }
    const m = await ports.metrics(c.service, c.resource, c.seconds ?? 5);
    if (c.kind === 'p99') {
      const ok = m.p99Ms === undefined || m.p99Ms <= c.maxMs;
      return {
        check: label(c),
        ok,
        detail: m.p99Ms === undefined ? 'no p99 reported' : `p99 ${Math.round(m.p99Ms)} ms`,
      };
    }
    return {
      check: label(c),
      ok: m.errorRate <= c.max,
      detail: `error rate ${(m.errorRate * 100).toFixed(1)} % at ${m.qps.toFixed(1)}/s`,
    };
  } catch (err) {
    return { check: label(c), ok: false, detail: `the check failed: ${errorMessage(err)}` };
  }
}

async function runChecks(ports: DrillPorts, checks: SteadyCheck[]): Promise<CheckResult[]> {
  return Promise.all(checks.map((c) => runCheck(ports, c)));
}

/** Runs a drill to its end (passed, aborted or refused) and returns its report. */
export async function runDrill(spec: DrillSpec, ports: DrillPorts): Promise<DrillReport> {
  const start = ports.clock();
  const timeline: TimelineEvent[] = [];
  const note = (what: TimelineEvent['what'], detail: string) =>
    timeline.push({ atMs: ports.clock() - start, what, detail });
  const report: DrillReport = {
    drill: spec.name,
    app: spec.app,
    outcome: 'passed',
    recoveryMs: null,
    injected: [],
    alerts: [],
    timeline,
  };
  const before = await runChecks(ports, spec.checks);
  for (const r of before)
    note('check-before', `${r.check}: ${r.ok ? 'ok' : 'BROKEN'} (${r.detail})`);
  const brokenBefore = before.find((r) => !r.ok);
  if (brokenBefore !== undefined) {
    note('refused', `steady state does not hold before the drill: ${brokenBefore.check}`);
    return { ...report, outcome: 'refused', broken: brokenBefore };
  }
  const every = spec.checkEveryMs ?? 1000;
  try {
    steps: for (const step of spec.steps) {
      const faults = step.faults.map((f) => ({ ...f, drill: spec.name }));
      const r = await ports.inject(spec.app, faults);
      report.injected.push(...r.faults.map((f) => f.id));
      note(
        'inject',
        `${step.name}: ${faults.map((f) => `${f.kind} at ${f.point}`).join(', ')} (${r.faults.map((f) => f.id).join(', ')})`,
      );
      const until = ports.clock() + step.holdMs;
      while (ports.clock() < until) {
        await ports.sleep(Math.min(every, Math.max(0, until - ports.clock())));
        const results = await runChecks(ports, spec.checks);
        const broken = results.find((x) => !x.ok);
        note(
          'check',
          results.map((x) => `${x.check}: ${x.ok ? 'ok' : 'BROKEN'} (${x.detail})`).join('; ') ||
            'no checks',
        );
        if (broken !== undefined) {
          report.outcome = 'aborted';
          report.broken = broken;
          note(
            'abort',
            `${broken.check} broke (${broken.detail}); reverting every fault of ${spec.name}`,
          );
          break steps;
        }
      }
    }
  } finally {
    const stopped = await ports.stop(spec.app, spec.name).catch((err: unknown) => {
      note('stop', `stop failed (${errorMessage(err)}); the faults end by their duration`);
      return undefined;
    });
    if (stopped !== undefined) note('stop', `stopped ${stopped.stopped.length} fault(s)`);
  }
  const stoppedAt = ports.clock();
  const recoverMs = spec.recoverMs ?? 30_000;
  for (;;) {
    const results = await runChecks(ports, spec.checks);
    if (results.every((x) => x.ok)) {
      report.recoveryMs = ports.clock() - stoppedAt;
      note('recovered', `every check passes ${report.recoveryMs} ms after the stop`);
      break;
    }
    if (ports.clock() - stoppedAt >= recoverMs) {
      note(
        'not-recovered',
        `after ${recoverMs} ms: ${results
          .filter((x) => !x.ok)
          .map((x) => `${x.check} (${x.detail})`)
          .join('; ')}`,
      );
      break;
    }
    await ports.sleep(every);
  }
  if (ports.alerts !== undefined) {
    report.alerts = await ports.alerts(start).catch(() => []);
    for (const a of report.alerts) note('alert', a);
  }
  return report;
}

/** The report as lines of text. */
export function formatDrillReport(r: DrillReport): string[] {
  const lines = [
    `drill ${r.drill} (app ${r.app}): ${r.outcome.toUpperCase()}${r.broken === undefined ? '' : ` — ${r.broken.check}: ${r.broken.detail}`}`,
    `recovery: ${r.recoveryMs === null ? 'not recovered in time' : `${r.recoveryMs} ms after the stop`}; faults injected: ${r.injected.length}; alerts: ${r.alerts.length}`,
  ];
  for (const e of r.timeline)
    lines.push(`  +${(e.atMs / 1000).toFixed(1).padStart(6)} s  ${e.what.padEnd(13)} ${e.detail}`);
  return lines;
}
