/**
 * `peak plan ls|show|diff|apply|rollback|schedule|schedules|unschedule`: plans (预案), named sets of config changes
 * (guard rules, degrade switches, cache switches, weights, consumer pauses, change entries)
 * applied together through the config center and rolled back to the exact earlier versions.
 * `diff`, `apply` and `schedule` take a plan's name or a plan file (stored first, checked as a
 * whole); `schedule` sets an apply (and its rollback) for a later time.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AdminClient } from '../../admin/admin-client.js';
import { UsageError } from '../../core/errors.js';
import type { PlanSpec } from '../../drill/plan-spec.js';
import type { Command } from '../command.js';
import { requireYes, YES_OPTION } from '../confirm.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';
import { parseSpan, parseTime, spanText } from '../parse.js';

function need(positionals: string[], usage: string): string {
  const v = positionals[0];
  if (v === undefined || v === '') throw new UsageError(`give the plan: ${usage}`);
  return v;
}

/** A plan name, or a file: the file's plan is stored first and its name returned. */
async function planName(admin: AdminClient, arg: string): Promise<string> {
  if (!arg.endsWith('.json') && !existsSync(arg)) return arg;
  let spec: PlanSpec;
  try {
    spec = JSON.parse(await readFile(arg, 'utf8')) as PlanSpec;
  } catch (err) {
    throw new UsageError(`cannot read the plan ${arg}: ${(err as Error).message}`);
  }
  await admin.drill.putPlan(spec, 'peak plan');
  return spec.name;
}

const ls: Command = {
  name: 'ls',
  watch: true,
  summary: 'every plan, and whether it is applied',
  options: { ...SERVER_OPTIONS },
  async run({ values, out }) {
    const plans = await (await adminClient(values)).drill.plans();
    out.json({ plans });
    if (plans.length === 0) out.line('no plans');
    for (const p of plans)
      out.line(
        `${p.name.padEnd(24)} ${p.app.padEnd(12)} ${String(p.changes).padStart(3)} change(s)  ${p.applied ? 'APPLIED' : 'not applied'}  ${p.description}`,
      );
    return 0;
  },
};

const show: Command = {
  name: 'show',
  summary: 'a plan and its apply / rollback history',
  args: '<name>',
  options: { ...SERVER_OPTIONS },
  async run({ values, positionals, out }) {
    const r = await (await adminClient(values)).drill.plan(
      need(positionals, 'peak plan show <name>'),
    );
    out.json(r);
    out.line(`${r.plan.name} (app ${r.plan.app}) ${r.plan.description ?? ''}`);
    for (const [i, c] of r.plan.changes.entries()) out.line(`  [${i}] ${JSON.stringify(c)}`);
    for (const sc of r.schedules ?? [])
      out.line(
        `  scheduled ${sc.id}: ${sc.action} at ${sc.at}${repeats(sc)} (${sc.state}, by ${sc.author})`,
      );
    for (const run of r.runs)
      out.line(
        `  run ${run.id} ${run.action} by ${run.actor} at ${run.at}: ${run.items.map((it) => `${it.group}/${it.key} v${it.before ?? it.baseline}→v${it.after}`).join(', ')}`,
      );
    return 0;
  },
};

const diff: Command = {
  name: 'diff',
  summary: 'what applying the plan would change, item by item',
  args: '<name|plan.json>',
  options: { ...ADMIN_OPTIONS },
  async run({ values, positionals, out }) {
    const arg = need(positionals, 'peak plan diff <name|plan.json>');
    const admin = await adminClient(values, { admin: arg.endsWith('.json') });
    const changes = await admin.drill.diff(await planName(admin, arg));
    out.json({ changes });
    for (const c of changes) {
      out.line(
        `[${c.index}] ${c.kind} ${c.item} (${c.version === null ? 'new item' : `v${c.version}`})${c.same ? ': no change' : ''}`,
      );
      if (!c.same) for (const l of c.diff) out.line(`    ${l.op} ${l.text}`);
    }
    return 0;
  },
};

const apply: Command = {
  name: 'apply',
  summary: 'apply a plan: all its changes in one config transaction, or none',
  args: '<name|plan.json>',
  options: { ...ADMIN_OPTIONS, comment: { type: 'string', valueName: 'TEXT', description: 'why' } },
  async run({ values, positionals, out }) {
    const admin = await adminClient(values, { admin: true });
    const name = await planName(admin, need(positionals, 'peak plan apply <name|plan.json>'));
    const run = await admin.drill.apply(name, {
      ...(typeof values.comment === 'string' ? { comment: values.comment } : {}),
    });
    out.json(run);
    out.line(
      `plan ${name} applied (run ${run.id}): ${run.items.map((it) => `${it.group}/${it.key} v${it.after}`).join(', ')}`,
    );
    return 0;
  },
};

const rollback: Command = {
  name: 'rollback',
  summary: "roll the plan's last apply back to the exact versions before it",
  args: '<name>',
  options: {
    ...ADMIN_OPTIONS,
    force: { type: 'boolean', description: 'restore even items changed since the apply' },
  },
  async run({ values, positionals, out }) {
    const admin = await adminClient(values, { admin: true });
    const name = need(positionals, 'peak plan rollback <name>');
    const run = await admin.drill.rollback(name, { force: values.force === true });
    out.json(run);
    out.line(
      `plan ${name} rolled back (run ${run.id}): ${run.items.map((it) => `${it.group}/${it.key} → v${it.before ?? it.baseline} (now v${it.after})`).join(', ')}`,
    );
    return 0;
  },
};

const del: Command = {
  name: 'delete',
  aliases: ['rm'],
  summary: 'delete a plan (its apply / rollback runs stay on record)',
  args: '<name>',
  options: { ...ADMIN_OPTIONS, ...YES_OPTION },
  examples: ['peak plan delete flash-sale --yes'],
  async run({ values, positionals, out }) {
    const name = need(positionals, 'peak plan delete <name> --yes');
    requireYes(values, `deleting plan ${name}`, `peak plan delete ${name}`);
    await (await adminClient(values, { admin: true })).drill.deletePlan(name);
    out.json({ deleted: name });
    out.line(`plan ${name} deleted`);
    return 0;
  },
};

/** ` every 1d` for a repeating schedule, else nothing. */
function repeats(sc: { everyMs?: number | null }): string {
  return sc.everyMs == null ? '' : ` every ${spanText(sc.everyMs)}`;
}

const scheduleCmd: Command = {
  name: 'schedule',
  summary: 'apply a plan later (and roll it back later still): every node watches, one runs it',
  args: '<name|plan.json>',
  options: {
    ...ADMIN_OPTIONS,
    at: {
      type: 'string',
      valueName: 'TIME',
      description: 'when to apply: +N[s|m|h|d], an ISO time or epoch ms (required)',
    },
    'rollback-at': {
      type: 'string',
      valueName: 'TIME',
      description: 'when to roll it back (after --at)',
    },
    rollback: {
      type: 'boolean',
      description: 'schedule a rollback at --at instead of an apply',
    },
    every: {
      type: 'string',
      valueName: 'SPAN',
      description:
        'repeat every N[m|h|d] (the rollback too; at least 1m); cancel the pending one to end it',
    },
    comment: { type: 'string', valueName: 'TEXT', description: 'why' },
  },
  examples: [
    'peak plan schedule flash-sale --at 2026-12-12T20:00:00+08:00 --rollback-at 2026-12-12T23:00:00+08:00',
    'peak plan schedule flash-sale --at 2026-12-08T20:00:00+08:00 --rollback-at 2026-12-08T22:00:00+08:00 --every 1d',
    'peak plan schedule flash-sale --at +10m',
    'peak plan schedule flash-sale --rollback --at +2h',
  ],
  async run({ values, positionals, out }) {
    const arg = need(positionals, 'peak plan schedule <name|plan.json> --at TIME');
    if (typeof values.at !== 'string')
      throw new UsageError('give the time with --at (+10m, or 2026-12-12T20:00:00+08:00)', {
        details: { input: '--at' },
      });
    const at = parseTime(values.at, '--at', 'ahead');
    const rollbackAt =
      typeof values['rollback-at'] === 'string'
        ? parseTime(values['rollback-at'], '--rollback-at', 'ahead')
        : undefined;
    if (values.rollback === true && rollbackAt !== undefined)
      throw new UsageError(
        '--rollback schedules a rollback at --at; --rollback-at goes with an apply',
      );
    const everyMs =
      typeof values.every === 'string' ? parseSpan(values.every, '--every', 60_000) : undefined;
    const admin = await adminClient(values, { admin: true });
    const name = await planName(admin, arg);
    const schedules = await admin.drill.schedule(name, {
      at,
      action: values.rollback === true ? 'rollback' : 'apply',
      ...(rollbackAt === undefined ? {} : { rollbackAt }),
      ...(everyMs === undefined ? {} : { everyMs }),
      ...(typeof values.comment === 'string' ? { comment: values.comment } : {}),
    });
    out.json({ schedules });
    for (const sc of schedules)
      out.line(
        `scheduled: ${sc.action} of plan ${sc.plan} at ${sc.at}${repeats(sc)} (schedule ${sc.id})`,
      );
    return 0;
  },
};

const schedulesCmd: Command = {
  name: 'schedules',
  watch: true,
  summary: 'scheduled plan runs, soonest first (pending and running; --all for past ones)',
  args: '[name]',
  options: {
    ...SERVER_OPTIONS,
    all: { type: 'boolean', description: 'also the runs done, failed and cancelled' },
  },
  async run({ values, positionals, out }) {
    const plan = positionals[0];
    const schedules = await (await adminClient(values)).drill.schedules({
      ...(plan === undefined ? {} : { plan }),
      all: values.all === true,
    });
    out.json({ schedules });
    if (schedules.length === 0)
      out.line(values.all === true ? 'no schedules' : 'nothing scheduled');
    for (const sc of schedules)
      out.line(
        `${String(sc.id).padStart(5)}  ${sc.at}  ${sc.action.padEnd(8)} ${sc.plan.padEnd(24)} ${sc.state.padEnd(9)}${repeats(sc)} ${
          sc.state === 'done'
            ? `run ${sc.runId} on ${sc.ranBy}`
            : sc.state === 'failed' || sc.state === 'cancelled'
              ? (sc.error ?? '')
              : `by ${sc.author}`
        }`,
      );
    return 0;
  },
};

const unschedule: Command = {
  name: 'unschedule',
  summary: 'cancel a pending scheduled plan run',
  args: '<schedule-id>',
  options: { ...ADMIN_OPTIONS },
  async run({ values, positionals, out }) {
    const id = Number(positionals[0]);
    if (!Number.isInteger(id) || id < 1)
      throw new UsageError(
        `give the schedule's id (a positive integer, from 'peak plan schedules'), got '${positionals[0] ?? ''}'`,
      );
    const sc = await (await adminClient(values, { admin: true })).drill.cancelSchedule(id);
    out.json({ schedule: sc });
    out.line(`schedule ${sc.id} (${sc.action} of plan ${sc.plan} at ${sc.at}) cancelled`);
    return 0;
  },
};

/** `peak plan`. */
export const planCommand: Command = {
  name: 'plan',
  summary: 'plans (预案): named config changes applied together and rolled back together',
  subcommands: [ls, show, diff, apply, rollback, scheduleCmd, schedulesCmd, unschedule, del],
};
