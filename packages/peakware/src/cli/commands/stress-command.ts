/**
 * `peak stress run <scenario-file>` runs a scenario (see `peakware/stress`) from this
 * machine: a live progress line on stderr, the report written as JSON and as a
 * self-contained HTML file, exit code 1 when the run stopped itself on an SLA threshold.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AdminClient } from '../../admin/admin-client.js';
import { ErrorCodes, PeakError, UsageError } from '../../core/errors.js';
import { renderHtmlReport } from '../../stress/html-report.js';
import { checkIsolation, type IsolationReport } from '../../stress/isolation-check.js';
import { formatProgress } from '../../stress/progress-line.js';
import { loadScenarioFile } from '../../stress/scenario-file.js';
import type { StressReport } from '../../stress/stress-report.js';
import { startRun } from '../../stress/stress-run.js';
import type { Command, Output } from '../command.js';
import { ADMIN_OPTIONS, adminClient } from '../control-client.js';
import { numberOption } from '../parse.js';

/** Prints the summary lines of a report. */
export function printReport(out: Output, report: StressReport, files: string[]): void {
  const t = report.totals;
  const l = report.latency;
  out.line(
    `${report.scenario} (run ${report.runId}): ${report.stopReason}${report.stopDetail === undefined ? '' : ` (${report.stopDetail})`}`,
  );
  out.line(
    `  ${t.requests} calls in ${report.durationS} s, ${t.throughput}/s, ${t.errors} failed, ${t.dropped} dropped`,
  );
  out.line(
    `  latency ms: p50 ${l.p50Ms}  p90 ${l.p90Ms}  p99 ${l.p99Ms}  p99.9 ${l.p999Ms}  max ${l.maxMs}`,
  );
  for (const s of report.steps)
    out.line(
      `  ${s.name.padEnd(20)} ok ${String(s.ok).padStart(8)}  failed ${String(s.errors).padStart(6)}  p99 ${s.latency.p99Ms} ms`,
    );
  for (const e of report.errors.slice(0, 5))
    out.line(`  error ×${e.count} ${e.step}: ${e.message}`);
  for (const f of files) out.line(`  report: ${f}`);
}

/** The isolation check after a run: the scenario's probes, and the control plane's topics. */
async function isolationOf(
  admin: AdminClient | undefined,
  scenario: Awaited<ReturnType<typeof loadScenarioFile>>,
  report: StressReport,
): Promise<IsolationReport | undefined> {
  if (!report.stress || (admin === undefined && scenario.isolation === undefined)) return undefined;
  return checkIsolation(
    { runId: report.runId, sinceMs: report.startedAt - 1000 },
    scenario.isolation?.probes ?? {},
    {
      ...scenario.isolation?.sources,
      ...(admin === undefined
        ? {}
        : { messages: (id: string, since: number) => admin.stress.leakedMessages(id, since) }),
    },
  );
}

/** Prints the isolation check. */
export function printIsolation(out: Output, isolation: IsolationReport): void {
  const c = isolation.checked;
  out.line(
    `  isolation: ${isolation.ok ? 'ok' : 'LEAKED'} (${c.tables.length} tables, ${c.caches.length} cache patterns${c.topics ? ', real topics' : ''} checked)`,
  );
  for (const l of isolation.leaks)
    out.line(
      `    leak: ${l.count} stress ${l.kind === 'table' ? 'rows' : l.kind === 'topic' ? 'messages' : 'keys'} in ${l.kind} ${l.where}`,
    );
}

const run: Command = {
  name: 'run',
  summary: 'run a scenario file: live progress, JSON and HTML report',
  args: '<scenario-file>',
  description:
    'The file is a JavaScript module whose default export is a scenario (defineScenario from ' +
    'peakware/stress) or a function returning one. Every call carries the stress flag unless ' +
    'the scenario says stress: false. The run stops at the end of its load model, on an SLA ' +
    'threshold (exit code 1), at its wall-clock limit, on Ctrl-C, or by peak stress stop. ' +
    'Registered with the control plane (unless --local), its rate follows peak stress target, ' +
    'and its report is kept there (peak stress ls). After a stress run the isolation check ' +
    "looks for the run's data in real tables, topics and cache keys (exit code 2 on a leak).",
  options: {
    ...ADMIN_OPTIONS,
    local: {
      type: 'boolean',
      description:
        'do not register the run with the control plane (no steering, no report kept, no isolation check of topics)',
    },
    out: {
      type: 'string',
      valueName: 'DIR',
      description: 'where to write the reports',
      default: '.',
    },
    target: {
      type: 'string',
      valueName: 'N',
      description:
        "start at this arrival rate (open models) or virtual users (closed) instead of the model's",
    },
  },
  examples: [
    'peak stress run scenarios/buy.js',
    'peak stress run buy.js --target 500 --out reports',
  ],
  async run({ positionals, values, out, json }) {
    const file = positionals[0];
    if (file === undefined)
      throw new UsageError('give the scenario file: peak stress run <scenario-file>');
    const scenario = await loadScenarioFile(file);
    const target = numberOption(values, 'target', { min: 0 });
    const tty = (out.stderr as NodeJS.WriteStream).isTTY === true;
    const admin = values.local === true ? undefined : await adminClient(values, { admin: true });
    const stressRun = startRun(scenario, {
      onProgress: (p) => {
        if (json) return;
        const line = formatProgress(p);
        out.stderr.write(tty ? `\r${line}\u001b[K` : `${line}\n`);
      },
    });
    if (target !== undefined) stressRun.setTarget(target);
    let steering: NodeJS.Timeout | undefined;
    if (admin !== undefined) {
      await admin.stress.createRun({
        id: stressRun.id,
        scenario: scenario.name,
        model: scenario.load,
      });
      steering = setInterval(() => {
        admin.stress
          .control(stressRun.id)
          .then((c) => {
            if (c.stop) stressRun.stop();
            else if (c.target !== null) stressRun.setTarget(c.target);
          })
          .catch(() => undefined); // the run goes on without the control plane
      }, 1000);
    }
    const onSigint = () => stressRun.stop();
    process.once('SIGINT', onSigint);
    let report: StressReport;
    try {
      report = await stressRun.done;
    } finally {
      process.off('SIGINT', onSigint);
      clearInterval(steering);
    }
    if (tty && !json) out.stderr.write('\n');
    const dir = path.resolve(String(values.out ?? '.'));
    await mkdir(dir, { recursive: true });
    const base = path.join(dir, `stress-${report.scenario}-${report.runId}`);
    await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(`${base}.html`, renderHtmlReport(report));
    const isolation = await isolationOf(admin, scenario, report);
    if (admin !== undefined) await admin.stress.finish(report.runId, report, isolation);
    out.json({ report, isolation, files: { json: `${base}.json`, html: `${base}.html` } });
    printReport(out, report, [`${base}.json`, `${base}.html`]);
    if (isolation !== undefined) printIsolation(out, isolation);
    if (isolation?.ok === false) return 2;
    return report.stopReason === 'sla' ? 1 : 0;
  },
};

const agent: Command = {
  name: 'agent',
  summary: "send a share of a run's load from this machine, with any number of other agents",
  args: '<scenario-file>',
  description:
    'Every agent of a run (same --run id, same scenario file) registers with the control plane, ' +
    'waits until --agents of them have joined, then sends 1/N of the scenario’s rate (or users), ' +
    'N being the agents alive (heartbeats every second; a change of N, a new target or a stop ' +
    'is picked up within a second). Each stores its report; the last one to report makes the ' +
    "control plane merge them (HDR histograms added) into the run's report.",
  options: {
    ...ADMIN_OPTIONS,
    run: { type: 'string', valueName: 'ID', description: 'the run these agents share' },
    agents: {
      type: 'string',
      valueName: 'N',
      description: 'agents to wait for before starting',
      default: '1',
    },
    agent: { type: 'string', valueName: 'ID', description: "this agent's id (default host-pid)" },
  },
  examples: ['peak stress agent buy.js --run promo-1 --agents 3'],
  async run({ positionals, values, out, json }) {
    const file = positionals[0];
    if (file === undefined)
      throw new UsageError('give the scenario file: peak stress agent <scenario-file> --run ID');
    const runId = values.run;
    if (typeof runId !== 'string' || !/^[\w.:-]{1,100}$/.test(runId))
      throw new UsageError('give the run id with --run (1-100 of letters, digits, _ . : -)');
    const want = Math.max(1, Math.round(numberOption(values, 'agents', { min: 0 }) ?? 1));
    const agentId =
      typeof values.agent === 'string'
        ? values.agent
        : `${os.hostname()}-${process.pid}`.replace(/[^\w.:-]/g, '_');
    const scenario = await loadScenarioFile(file);
    const admin = await adminClient(values, { admin: true });
    await admin.stress.createRun({ id: runId, scenario: scenario.name, model: scenario.load });
    let hb = await admin.stress.heartbeat(runId, agentId);
    const deadline = Date.now() + 120_000;
    while (hb.count < want) {
      if (Date.now() > deadline)
        throw new PeakError(
          ErrorCodes.STRESS_INVALID,
          `only ${hb.count} of ${want} agents joined run ${runId} in 120 s`,
        );
      await new Promise((r) => setTimeout(r, 250));
      hb = await admin.stress.heartbeat(runId, agentId);
    }
    out.note(`agent ${agentId}: ${hb.index + 1} of ${hb.count} on run ${runId}`);
    const stressRun = startRun(scenario, { runId, share: 1 / hb.count });
    if (hb.target !== null) stressRun.setTarget(hb.target);
    const beat = setInterval(() => {
      admin.stress
        .heartbeat(runId, agentId)
        .then((c) => {
          if (c.stop) stressRun.stop();
          stressRun.setShare(1 / c.count);
          stressRun.setTarget(c.target ?? undefined);
        })
        .catch(() => undefined); // the share stays as it was
    }, 1000);
    let report: StressReport;
    try {
      report = await stressRun.done;
    } finally {
      clearInterval(beat);
    }
    const stored = await admin.stress.putAgentReport(runId, agentId, report);
    out.json({ agent: agentId, report, stored });
    if (!json) printReport(out, report, []);
    return report.stopReason === 'sla' ? 1 : 0;
  },
};

const ls: Command = {
  name: 'ls',
  watch: true,
  summary: 'the newest runs the control plane keeps',
  options: {
    ...ADMIN_OPTIONS,
    limit: { type: 'string', valueName: 'N', description: 'most runs', default: '20' },
  },
  async run({ values, out }) {
    const limit = numberOption(values, 'limit', { min: 0 }) ?? 20;
    const admin = await adminClient(values);
    const runs = await admin.stress.runs(Math.max(1, Math.min(1000, Math.round(limit))));
    out.json({ runs });
    if (runs.length === 0) out.line('no stress runs yet (peak stress run <scenario-file>)');
    for (const r of runs) {
      const t = r.totals;
      out.line(
        `${r.startedAt.slice(0, 19)}  ${r.id}  ${r.scenario.padEnd(16)} ${r.status.padEnd(8)} ${(r.stopReason ?? '').padEnd(10)} ` +
          (t === null
            ? ''
            : `${t.requests} calls ${t.throughput}/s err ${t.errors} p99 ${r.latency?.p99Ms} ms`) +
          (r.isolated === null ? '' : r.isolated ? '  isolated' : '  LEAKED'),
      );
    }
    return 0;
  },
};

function runIdOf(positionals: string[]): string {
  const id = positionals[0];
  if (id === undefined) throw new UsageError('give the run id (peak stress ls lists them)');
  return id;
}

const target: Command = {
  name: 'target',
  summary: "change a running run's rate (open) or virtual users (closed); 'model' to go back",
  args: '<run-id> <n|model>',
  options: ADMIN_OPTIONS,
  async run({ positionals, values, out }) {
    const id = runIdOf(positionals);
    const v = positionals[1];
    const n = v === 'model' ? null : Number(v);
    if (n !== null && (v === undefined || !Number.isFinite(n) || n < 0))
      throw new UsageError(
        `give the new target as a number >= 0 or 'model', got ${JSON.stringify(v)}`,
      );
    const c = await (await adminClient(values, { admin: true })).stress.setTarget(id, n);
    out.json(c);
    out.line(`run ${id}: target ${c.target ?? "the model's"}`);
    return 0;
  },
};

const stop: Command = {
  name: 'stop',
  summary: 'ask a running run to stop (its generators end within a second)',
  args: '<run-id>',
  options: ADMIN_OPTIONS,
  async run({ positionals, values, out }) {
    const id = runIdOf(positionals);
    const c = await (await adminClient(values, { admin: true })).stress.stop(id);
    out.json(c);
    out.line(`run ${id}: stop asked (${c.status})`);
    return 0;
  },
};

const report: Command = {
  name: 'report',
  summary: "write a finished run's kept report as HTML (and JSON)",
  args: '<run-id>',
  options: {
    ...ADMIN_OPTIONS,
    out: { type: 'string', valueName: 'DIR', description: 'where to write it', default: '.' },
  },
  async run({ positionals, values, out }) {
    const id = runIdOf(positionals);
    const r = await (await adminClient(values)).stress.run(id);
    if (r.report === null)
      throw new PeakError(
        ErrorCodes.STRESS_NOT_FOUND,
        `run ${id} is ${r.status}: it has no report yet`,
      );
    const dir = path.resolve(String(values.out ?? '.'));
    await mkdir(dir, { recursive: true });
    const base = path.join(dir, `stress-${r.scenario}-${r.id}`);
    await writeFile(`${base}.json`, `${JSON.stringify(r.report, null, 2)}\n`);
    await writeFile(`${base}.html`, renderHtmlReport(r.report));
    out.json({ files: { json: `${base}.json`, html: `${base}.html` } });
    printReport(out, r.report, [`${base}.json`, `${base}.html`]);
    if (r.isolation !== null) printIsolation(out, r.isolation);
    return 0;
  },
};

/** `peak stress`: full-link stress tests with peakware/stress. */
export const stressCommand: Command = {
  name: 'stress',
  summary: 'run stress scenarios, steer them, list their reports (peakware/stress)',
  subcommands: [run, agent, ls, target, stop, report],
};
