/**
 * `peak plan ls|show|diff|apply|rollback`: plans (预案), named sets of config changes
 * (guard rules, degrade switches, cache switches, weights, consumer pauses, change entries)
 * applied together through the config center and rolled back to the exact earlier versions.
 * `diff` and `apply` take a plan's name or a plan file (stored first, checked as a whole).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { AdminClient } from '../../admin/admin-client.js';
import { UsageError } from '../../core/errors.js';
import type { PlanSpec } from '../../drill/plan-spec.js';
import type { Command } from '../command.js';
import { requireYes, YES_OPTION } from '../confirm.js';
import { ADMIN_OPTIONS, adminClient, SERVER_OPTIONS } from '../control-client.js';

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

/** `peak plan`. */
export const planCommand: Command = {
  name: 'plan',
  summary: 'plans (预案): named config changes applied together and rolled back together',
  subcommands: [ls, show, diff, apply, rollback, del],
};
