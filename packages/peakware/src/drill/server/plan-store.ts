/**
 * Plans on the control plane: stored in `peak.drill_plans`, checked as a whole (every
 * change resolved and its value checked against its kind's schema and the item's own, and
 * refused together with its path on the first problem), previewed as a line diff against
 * the items in force, applied in one config transaction (all items or none), and rolled
 * back to the exact versions in force before the apply, refused when an item moved since
 * (unless forced). Every apply and rollback is a row of `peak.drill_plan_runs` and each
 * item's change is in the config audit with the plan's name.
 */
import type pg from 'pg';
import { validateValue } from '../../config/config-schema.js';
import { type DiffLine, lineDiff } from '../../config/line-diff.js';
import { ErrorCodes, errorMessage, isPeakError, PeakError } from '../../core/errors.js';
import { type PlanSpec, type ResolvedChange, resolvePlan } from '../plan-spec.js';
import type { Actor, BatchChange, ConfigPort } from './config-port.js';

/** One item of a run: its versions around the change. */
export interface RunItem {
  group: string;
  key: string;
  kind: string;
  /** In force before the apply (null: the item did not exist). */
  before: number | null;
  /** The baseline version the apply created first for a new item. */
  baseline: number | null;
  /** What the run published. */
  after: number;
}

/** One apply or rollback. */
export interface PlanRun {
  id: number;
  plan: string;
  app: string;
  action: 'apply' | 'rollback';
  items: RunItem[];
  actor: string;
  source: string;
  comment: string;
  at: string;
}

/** A stored plan and whether it is applied now. */
export interface PlanView {
  name: string;
  app: string;
  description: string;
  changes: number;
  applied: boolean;
  updatedBy: string;
  updatedAt: string;
}

/** One change of a plan's preview. */
export interface PlanDiffEntry {
  index: number;
  kind: string;
  item: string;
  /** The version in force (null: the item does not exist; the apply creates its baseline first). */
  version: number | null;
  /** True when the value in force is already the plan's. */
  same: boolean;
  diff: DiffLine[];
}

function invalid(message: string, details: Record<string, unknown> = {}): PeakError {
  return new PeakError(ErrorCodes.PLAN_INVALID, message, { details });
}

function pretty(format: 'json' | 'text', value: string): string {
  if (format !== 'json') return value;
  try {
    return JSON.stringify(JSON.parse(value), null, 2);
  } catch {
    return value;
  }
}

/** Resolves a plan and checks every value against its kind's schema; refuses on the first problem. */
export function checkPlan(spec: PlanSpec): ResolvedChange[] {
  let resolved: ResolvedChange[];
  try {
    resolved = resolvePlan(spec);
  } catch (err) {
    throw invalid(`plan ${String(spec?.name)}: ${errorMessage(err)}; nothing was changed`);
  }
  for (const ch of resolved) {
    if (ch.schema === undefined || ch.format !== 'json') continue;
    const problems = validateValue(JSON.parse(ch.value), ch.schema);
    if (problems.length > 0) {
      const p = problems[0]!;
      throw invalid(
        `plan ${spec.name}: changes[${ch.index}] (${ch.kind} ${ch.group}/${ch.key}): ${p.path} ${p.reason}; the whole plan is refused, nothing was changed`,
        { index: ch.index, path: p.path, problems: problems.slice(0, 20) },
      );
    }
  }
  return resolved;
}

/** Stores (creates or replaces) a plan after checking it. */
export async function putPlan(pool: pg.Pool, spec: PlanSpec, actor: Actor): Promise<PlanView> {
  checkPlan(spec);
  await pool.query(
    `INSERT INTO peak.drill_plans (name, app, spec, updated_by) VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO UPDATE SET app = EXCLUDED.app, spec = EXCLUDED.spec,
       updated_by = EXCLUDED.updated_by, updated_at = now()`,
    [spec.name, spec.app, JSON.stringify(spec), actor.author],
  );
  return (await listPlans(pool)).find((p) => p.name === spec.name)!;
}

/** Every plan. */
export async function listPlans(pool: pg.Pool): Promise<PlanView[]> {
  const { rows } = await pool.query<{
    name: string;
    app: string;
    spec: PlanSpec;
    updated_by: string;
    updated_at: Date;
    last: string | null;
  }>(
    `SELECT p.name, p.app, p.spec, p.updated_by, p.updated_at,
            (SELECT action FROM peak.drill_plan_runs r WHERE r.plan = p.name ORDER BY id DESC LIMIT 1) AS last
       FROM peak.drill_plans p ORDER BY p.name`,
  );
  return rows.map((r) => ({
    name: r.name,
    app: r.app,
    description: r.spec.description ?? '',
    changes: r.spec.changes.length,
    applied: r.last === 'apply',
    updatedBy: r.updated_by,
    updatedAt: r.updated_at.toISOString(),
  }));
}

/** One plan's spec (PEAK_PLAN_NOT_FOUND when there is none). */
export async function getPlan(pool: pg.Pool, name: string): Promise<PlanSpec> {
  const { rows } = await pool.query<{ spec: PlanSpec }>(
    'SELECT spec FROM peak.drill_plans WHERE name = $1',
    [name],
  );
  if (rows[0] === undefined) {
    const known = (await listPlans(pool)).map((p) => p.name);
    throw new PeakError(
      ErrorCodes.PLAN_NOT_FOUND,
      `no plan '${name}'; known plans: ${known.slice(0, 20).join(', ') || 'none'} (store one with 'peak plan apply <file>' or PUT /api/v1/drill/plans/<name>)`,
      { details: { plan: name } },
    );
  }
  return rows[0].spec;
}

/** Deletes a plan (its runs stay, as the audit trail). */
export async function deletePlan(pool: pg.Pool, name: string): Promise<void> {
  await getPlan(pool, name);
  await pool.query('DELETE FROM peak.drill_plans WHERE name = $1', [name]);
}

/** A plan's runs, newest first. */
export async function planRuns(pool: pg.Pool, name: string, limit = 50): Promise<PlanRun[]> {
  const { rows } = await pool.query<Omit<PlanRun, 'at' | 'id'> & { id: string; at: Date }>(
    `SELECT id, plan, app, action, items, actor, source, comment, at
       FROM peak.drill_plan_runs WHERE plan = $1 ORDER BY id DESC LIMIT $2`,
    [name, limit],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id), at: r.at.toISOString() }));
}

/** What applying the plan would change, item by item, against the values in force. */
export async function diffPlan(
  cfg: ConfigPort,
  pool: pg.Pool,
  name: string,
): Promise<PlanDiffEntry[]> {
  const spec = await getPlan(pool, name);
  const out: PlanDiffEntry[] = [];
  for (const ch of checkPlan(spec)) {
    const now = await cfg.get(pool, { app: spec.app, group: ch.group, key: ch.key });
    const before = pretty(now?.format ?? ch.format, now?.value ?? ch.baseline);
    const after = pretty(ch.format, ch.value);
    out.push({
      index: ch.index,
      kind: ch.kind,
      item: `${ch.group}/${ch.key}`,
      version: now?.version ?? null,
      same: before === after,
      diff: lineDiff(before, after),
    });
  }
  return out;
}

/**
 * Applies a plan in one config transaction: a new item gets its baseline first, then
 * every item its value. Refused (nothing changed) when the plan is applied already, or
 * when any change is refused by the item's own schema or a gray release.
 */
export async function applyPlan(
  cfg: ConfigPort,
  pool: pg.Pool,
  name: string,
  actor: Actor,
  comment = '',
): Promise<PlanRun> {
  const spec = await getPlan(pool, name);
  const resolved = checkPlan(spec);
  const last = (await planRuns(pool, name, 1))[0];
  if (last?.action === 'apply')
    throw new PeakError(
      ErrorCodes.PLAN_CONFLICT,
      `plan ${name} is applied already (run ${last.id} by ${last.actor} at ${last.at}); roll it back first with 'peak plan rollback ${name}'`,
      { details: { run: last.id } },
    );
  const changes: BatchChange[] = [];
  const created = new Set<string>();
  for (const ch of resolved) {
    const ref = { app: spec.app, group: ch.group, key: ch.key };
    const now = await cfg.get(pool, ref);
    if (now === undefined) {
      created.add(`${ch.group}/${ch.key}`);
      changes.push({
        ref,
        format: ch.format,
        value: ch.baseline,
        expectedVersion: 0,
        ...(ch.schema === undefined ? {} : { schema: ch.schema }),
      });
      changes.push({ ref, format: ch.format, value: ch.value });
    } else {
      changes.push({ ref, format: ch.format, value: ch.value, expectedVersion: now.version });
    }
  }
  let results: Awaited<ReturnType<ConfigPort['publishBatch']>>;
  try {
    results = await cfg.publishBatch(
      pool,
      changes,
      actor,
      `plan ${name} apply${comment ? `: ${comment}` : ''}`,
      'publish',
    );
  } catch (err) {
    if (isPeakError(err) && err.code !== ErrorCodes.CONFIG_CONFLICT)
      throw new PeakError(
        ErrorCodes.PLAN_INVALID,
        `plan ${name}: ${err.message}; the whole plan is refused, nothing was changed`,
        { cause: err, details: err.details },
      );
    throw err;
  }
  const items: RunItem[] = resolved.map((ch) => {
    const mine = results.filter((r) => r.ref.group === ch.group && r.ref.key === ch.key);
    const isNew = created.has(`${ch.group}/${ch.key}`);
    return {
      group: ch.group,
      key: ch.key,
      kind: ch.kind,
      before: isNew ? null : (mine[0]?.previous ?? null),
      baseline: isNew ? (mine[0]?.version ?? null) : null,
      after: mine.at(-1)!.version,
    };
  });
  return recordRun(pool, spec, 'apply', items, actor, comment);
}

/**
 * Rolls back the plan's last apply: every item back to the exact version in force before
 * it (the baseline for items the apply created), in one transaction. Refused when an item
 * moved since the apply, unless `force`.
 */
export async function rollbackPlan(
  cfg: ConfigPort,
  pool: pg.Pool,
  name: string,
  actor: Actor,
  options: { force?: boolean; comment?: string } = {},
): Promise<PlanRun> {
  const spec = await getPlan(pool, name);
  const last = (await planRuns(pool, name, 1))[0];
  if (last?.action !== 'apply')
    throw new PeakError(
      ErrorCodes.PLAN_CONFLICT,
      `plan ${name} is not applied${last === undefined ? '' : ` (its last run, ${last.id}, was a rollback)`}; nothing to roll back`,
      { details: { plan: name } },
    );
  const changes: BatchChange[] = [...last.items].reverse().map((it) => ({
    ref: { app: last.app, group: it.group, key: it.key },
    format: 'json',
    value: '',
    restore: (it.before ?? it.baseline)!,
    ...(options.force === true ? {} : { expectedVersion: it.after }),
  }));
  let results: Awaited<ReturnType<ConfigPort['publishBatch']>>;
  try {
    results = await cfg.publishBatch(
      pool,
      changes,
      actor,
      `plan ${name} rollback${options.comment ? `: ${options.comment}` : ''}`,
      'rollback',
    );
  } catch (err) {
    if (isPeakError(err, ErrorCodes.CONFIG_CONFLICT))
      throw new PeakError(
        ErrorCodes.PLAN_CONFLICT,
        `plan ${name}: ${err.message}; nothing was rolled back (--force restores anyway)`,
        { cause: err, details: err.details },
      );
    throw err;
  }
  const items: RunItem[] = [...last.items].reverse().map((it, i) => ({
    ...it,
    after: results[i]!.version,
  }));
  return recordRun(pool, spec, 'rollback', items, actor, options.comment ?? '');
}

async function recordRun(
  pool: pg.Pool,
  spec: PlanSpec,
  action: 'apply' | 'rollback',
  items: RunItem[],
  actor: Actor,
  comment: string,
): Promise<PlanRun> {
  const { rows } = await pool.query<{ id: string; at: Date }>(
    `INSERT INTO peak.drill_plan_runs (plan, app, action, items, actor, source, comment)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, at`,
    [spec.name, spec.app, action, JSON.stringify(items), actor.author, actor.source, comment],
  );
  const row = rows[0]!;
  return {
    id: Number(row.id),
    plan: spec.name,
    app: spec.app,
    action,
    items,
    actor: actor.author,
    source: actor.source,
    comment,
    at: row.at.toISOString(),
  };
}
