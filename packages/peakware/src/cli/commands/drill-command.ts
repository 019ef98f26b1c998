/**
 * `peak drill run <drill.json>` runs a fault drill (steps of faults with steady-state checks
 * before, during and after; aborted and reverted when a check breaks; a timeline report),
 * `peak drill status --app APP` shows the faults in force and what every instance reports
 * holding, `peak drill stop --app APP [--drill NAME]` reverts faults at once.
 */
import { exec } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { AdminClient } from '../../admin/admin-client.js';
import { UsageError } from '../../core/errors.js';
import {
  checkDrillSpec,
  type DrillPorts,
  type DrillSpec,
  formatDrillReport,
  runDrill,
} from '../../drill/drill-runner.js';
import type { Command } from '../command.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';

const run = promisify(exec);

const APP = {
  app: { type: 'string', valueName: 'APP', description: 'the app (config namespace)' },
} as const;

function needApp(values: Record<string, unknown>): string {
  if (typeof values.app !== 'string' || values.app === '')
    throw new UsageError('give the app: --app APP');
  return values.app;
}

/** The drill runner's ports over the admin client (custom checks run as shell commands). */
export function adminDrillPorts(admin: AdminClient): DrillPorts {
  return {
    inject: (app, faults) => admin.drill.inject(app, faults, 'peak drill run'),
    stop: (app, drill) => admin.drill.stop(app, { drill, author: 'peak drill run' }),
    async metrics(service, resource, seconds) {
      const live = await admin.telemetry.liveMetrics({ service, seconds });
      const rows = live.resources.filter(
        (r) => r.service === service && (resource === undefined || r.resource === resource),
      );
      const chosen =
        resource === undefined ? (rows.find((r) => r.resource === '__inbound__') ?? rows) : rows;
      const list = Array.isArray(chosen) ? chosen : [chosen];
      const qps = list.reduce((s, r) => s + r.qps, 0);
      const errors = list.reduce((s, r) => s + r.errorQps, 0);
      const p99s = list.map((r) => r.rtP99Ms).filter((v): v is number => v !== undefined);
      return {
        qps,
        errorRate: qps > 0 ? errors / qps : 0,
        ...(p99s.length === 0 ? {} : { p99Ms: Math.max(...p99s) }),
      };
    },
    async custom(check) {
      if (check.command === undefined)
        return { ok: false, detail: 'a custom check in a drill file needs a command' };
      try {
        const r = await run(check.command, { timeout: 60_000 });
        return { ok: true, detail: r.stdout.trim().split('\n').at(-1) ?? 'exit 0' };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return {
          ok: false,
          detail: `exit ${e.code ?? '?'}: ${(e.stderr || e.stdout || '').trim().split('\n').at(-1) ?? ''}`,
        };
      }
    },
    async alerts(sinceMs) {
      const events = await admin.alerts.events({ limit: 200 });
      return events
        .filter((e) => Date.parse(e.at) >= sinceMs)
        .map((e) => `${e.at} ${e.rule} ${e.state} (${e.value})`);
    },
    clock: Date.now,
    sleep: (ms) => sleep(ms),
  };
}

const runCmd: Command = {
  name: 'run',
  summary: 'run a drill: faults in steps, steady-state checks, abort and revert when one breaks',
  args: '<drill.json>',
  options: { ...ADMIN_OPTIONS },
  examples: ['peak drill run drills/inventory-slow.json'],
  async run({ values, positionals, out }) {
    const file = positionals[0];
    if (file === undefined)
      throw new UsageError('give the drill file: peak drill run <drill.json>');
    let spec: DrillSpec;
    try {
      spec = JSON.parse(await readFile(file, 'utf8')) as DrillSpec;
    } catch (err) {
      throw new UsageError(`cannot read the drill ${file}: ${(err as Error).message}`);
    }
    const problems = checkDrillSpec(spec);
    if (problems.length > 0) throw new UsageError(`drill ${file}: ${problems.join('; ')}`);
    const admin = await adminClient(values, { admin: true });
    const report = await runDrill(spec, adminDrillPorts(admin));
    out.json(report);
    for (const l of formatDrillReport(report)) out.line(l);
    return report.outcome === 'passed' ? 0 : 1;
  },
};

const status: Command = {
  name: 'status',
  summary: 'the faults in force in an app and what each instance reports holding',
  options: { ...SERVER_OPTIONS, ...APP },
  examples: ['peak drill status --app shop'],
  async run({ values, out }) {
    const s = await (await adminClient(values)).drill.status(needApp(values));
    out.json(s);
    out.line(`app ${s.app}: ${s.faults.length} fault(s) published (drill/faults v${s.version})`);
    for (const f of s.faults)
      out.line(
        `  ${f.id}  ${f.kind} at ${f.point} ${JSON.stringify(f.match ?? {})}  ${f.durationMs} ms  drill ${f.drill ?? '-'}  on ${f.boots.length} instance(s)`,
      );
    for (const i of s.instances) {
      out.line(
        `${i.instanceId}  ${i.service ?? ''}  boot ${i.boot}  ${i.live ? `reported ${Math.round(i.ageMs / 1000)}s ago` : `SILENT ${Math.round(i.ageMs / 1000)}s`}`,
      );
      for (const f of i.active)
        out.line(
          `  active  ${f.id}  ${f.kind} at ${f.point}  ${f.hits} hit(s)  until +${Math.max(0, Math.round((f.until - Date.now()) / 1000))}s`,
        );
      for (const f of i.ended)
        out.line(`  ended   ${f.id}  ${f.ended?.reason ?? ''}  ${f.hits} hit(s)`);
    }
    return 0;
  },
};

const stop: Command = {
  name: 'stop',
  summary: "revert an app's faults now: one drill's (--drill), some (--id), or all",
  options: {
    ...ADMIN_OPTIONS,
    ...APP,
    drill: { type: 'string', valueName: 'NAME', description: 'only this drill' },
    id: { type: 'string', valueName: 'ID[,ID]', description: 'only these faults' },
  },
  examples: ['peak drill stop --app shop', 'peak drill stop --app shop --drill inventory-slow'],
  async run({ values, out }) {
    const admin = await adminClient(values, { admin: true });
    const r = await admin.drill.stop(needApp(values), {
      ...(typeof values.drill === 'string' ? { drill: values.drill } : {}),
      ...(typeof values.id === 'string' ? { ids: values.id.split(',') } : {}),
    });
    out.json(r);
    out.line(
      `stopped ${r.stopped.length} fault(s)${r.stopped.length ? `: ${r.stopped.join(', ')}` : ''}`,
    );
    return 0;
  },
};

/** `peak drill`. */
export const drillCommand: Command = {
  name: 'drill',
  summary: 'fault drills: run one, see the faults in force, stop them',
  subcommands: [runCmd, status, stop],
};
