/**
 * `peak stress run <scenario-file>` runs a scenario (see `peakware/stress`) from this
 * machine: a live progress line on stderr, the report written as JSON and as a
 * self-contained HTML file, exit code 1 when the run stopped itself on an SLA threshold.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../core/errors.js';
import { renderHtmlReport } from '../../stress/html-report.js';
import { formatProgress } from '../../stress/progress-line.js';
import { loadScenarioFile } from '../../stress/scenario-file.js';
import type { StressReport } from '../../stress/stress-report.js';
import { startRun } from '../../stress/stress-run.js';
import type { Command, Output } from '../command.js';

function numberOption(values: Record<string, unknown>, option: string): number | undefined {
  const v = values[option];
  if (typeof v !== 'string') return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new UsageError(`--${option} must be a number >= 0, got '${v}'`);
  return n;
}

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

const run: Command = {
  name: 'run',
  summary: 'run a scenario file: live progress, JSON and HTML report',
  args: '<scenario-file>',
  description:
    'The file is a JavaScript module whose default export is a scenario (defineScenario from ' +
    'peakware/stress) or a function returning one. Every call carries the stress flag unless ' +
    'the scenario says stress: false. The run stops at the end of its load model, on an SLA ' +
    'threshold (exit code 1), at its wall-clock limit, or on Ctrl-C.',
  options: {
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
    const target = numberOption(values, 'target');
    const tty = (out.stderr as NodeJS.WriteStream).isTTY === true;
    const stressRun = startRun(scenario, {
      onProgress: (p) => {
        if (json) return;
        const line = formatProgress(p);
        out.stderr.write(tty ? `\r${line}\u001b[K` : `${line}\n`);
      },
    });
    if (target !== undefined) stressRun.setTarget(target);
    const onSigint = () => stressRun.stop();
    process.once('SIGINT', onSigint);
    let report: StressReport;
    try {
      report = await stressRun.done;
    } finally {
      process.off('SIGINT', onSigint);
    }
    if (tty && !json) out.stderr.write('\n');
    const dir = path.resolve(String(values.out ?? '.'));
    await mkdir(dir, { recursive: true });
    const base = path.join(dir, `stress-${report.scenario}-${report.runId}`);
    await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(`${base}.html`, renderHtmlReport(report));
    out.json({ report, files: { json: `${base}.json`, html: `${base}.html` } });
    printReport(out, report, [`${base}.json`, `${base}.html`]);
    return report.stopReason === 'sla' ? 1 : 0;
  },
};

/** `peak stress`: full-link stress tests with peakware/stress. */
export const stressCommand: Command = {
  name: 'stress',
  summary: 'run stress scenarios (peakware/stress)',
  subcommands: [run],
};
