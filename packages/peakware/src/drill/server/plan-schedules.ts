/**
 * Scheduled plan runs (`peak.drill_plan_schedules`): "apply flash-sale at 20:00, roll it
 * back at 23:00", set ahead of a promotion so the switch happens on time without anyone at
 * a keyboard. Every control-plane node looks for due schedules once a second and claims
 * each with one conditional UPDATE, so exactly one node runs it (a row whose node died while
 * running is claimed again after {@link RECLAIM_MS}; the plan's own "applied already" and
 * "not applied" checks keep a second try from changing anything twice). A run is the same
 * apply or rollback as `peak plan apply` (one config transaction, audited, a row of the
 * plan's runs), its author the schedule's with "(scheduled)"; the schedule keeps the run's
 * id, or the error that refused it.
 */
import type pg from 'pg';
import { ErrorCodes, errorMessage, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Actor, ConfigPort } from './config-port.js';
import { applyPlan, getPlan, rollbackPlan } from './plan-store.js';

/** A running schedule whose node has not finished it this long after claiming is claimed again. */
export const RECLAIM_MS = 60_000;
/** How far ahead a run may be scheduled. */
const MAX_AHEAD_MS = 366 * 86_400_000;

/** One scheduled run. */
export interface PlanSchedule {
  id: number;
  plan: string;
  action: 'apply' | 'rollback';
  /** When it is due, ISO time. */
  at: string;
  state: 'pending' | 'running' | 'done' | 'failed' | 'cancelled';
  author: string;
  comment: string;
  createdAt: string;
  /** The node that ran it. */
  ranBy: string | null;
  finishedAt: string | null;
  /** The plan run it made (`peak plan show`). */
  runId: number | null;
  /** Why it failed. */
  error: string | null;
}

interface Row {
  id: string;
  plan: string;
  action: 'apply' | 'rollback';
  due_at: Date;
  state: PlanSchedule['state'];
  author: string;
  source: string;
  comment: string;
  created_at: Date;
  claimed_by: string | null;
  finished_at: Date | null;
  run_id: string | null;
  error: string | null;
}

function view(r: Row): PlanSchedule {
  return {
    id: Number(r.id),
    plan: r.plan,
    action: r.action,
    at: r.due_at.toISOString(),
    state: r.state,
    author: r.author,
    comment: r.comment,
    createdAt: r.created_at.toISOString(),
    ranBy: r.claimed_by,
    finishedAt: r.finished_at?.toISOString() ?? null,
    runId: r.run_id === null ? null : Number(r.run_id),
    error: r.error,
  };
}

/** What to schedule: an apply at `at`, a rollback at `at`, or both (the rollback later). */
export interface ScheduleRequest {
  action: 'apply' | 'rollback';
  /** Epoch ms. */
  at: number;
  /** With an apply: also roll it back at this time (epoch ms, after `at`). */
  rollbackAt?: number;
  comment?: string;
}

function invalid(message: string, input: string): PeakError {
  return new PeakError(ErrorCodes.PLAN_INVALID, message, { details: { input } });
}

/** Schedules a plan's apply or rollback (or both); refuses a time past, too far, or out of order. */
export async function schedulePlan(
  pool: pg.Pool,
  name: string,
  req: ScheduleRequest,
  actor: Actor,
  nowMs = Date.now(),
): Promise<PlanSchedule[]> {
  await getPlan(pool, name); // PEAK_PLAN_NOT_FOUND for an unknown plan
  const check = (t: number, what: string) => {
    if (!Number.isFinite(t))
      throw invalid(`${what} is not a time; give an ISO time or epoch milliseconds`, what);
    if (t <= nowMs)
      throw invalid(
        `${what} ${new Date(t).toISOString()} is not in the future (now ${new Date(nowMs).toISOString()}); to run it now, use 'peak plan ${req.action}'`,
        what,
      );
    if (t > nowMs + MAX_AHEAD_MS)
      throw invalid(`${what} ${new Date(t).toISOString()} is more than a year ahead`, what);
  };
  check(req.at, 'at');
  const runs: { action: 'apply' | 'rollback'; at: number }[] = [{ action: req.action, at: req.at }];
  if (req.rollbackAt !== undefined) {
    if (req.action !== 'apply')
      throw invalid(
        'rollbackAt goes with an apply: schedule the rollback itself instead',
        'rollbackAt',
      );
    check(req.rollbackAt, 'rollbackAt');
    if (req.rollbackAt <= req.at)
      throw invalid(
        `rollbackAt ${new Date(req.rollbackAt).toISOString()} is not after the apply at ${new Date(req.at).toISOString()}`,
        'rollbackAt',
      );
    runs.push({ action: 'rollback', at: req.rollbackAt });
  }
  const { rows } = await pool.query<Row>(
    `INSERT INTO peak.drill_plan_schedules (plan, action, due_at, author, source, comment)
     SELECT $1, a, to_timestamp(t / 1000.0), $4, $5, $6
       FROM unnest($2::text[], $3::float8[]) AS x(a, t)
     RETURNING *`,
    [
      name,
      runs.map((r) => r.action),
      runs.map((r) => r.at),
      actor.author,
      actor.source,
      req.comment ?? '',
    ],
  );
  return rows.map(view).sort((a, b) => a.at.localeCompare(b.at));
}

/** Schedules, soonest first: pending and running ones, or (`all`) every one, of one plan or all. */
export async function listSchedules(
  pool: pg.Pool,
  options: { plan?: string; all?: boolean } = {},
): Promise<PlanSchedule[]> {
  const { rows } = await pool.query<Row>(
    `SELECT * FROM peak.drill_plan_schedules
      WHERE ($1::text IS NULL OR plan = $1)
        AND ($2 OR state IN ('pending', 'running'))
      ORDER BY due_at, id LIMIT 500`,
    [options.plan ?? null, options.all === true],
  );
  return rows.map(view);
}

/** Cancels a pending schedule; refused once it has started or ended. */
export async function cancelSchedule(
  pool: pg.Pool,
  id: number,
  actor: Actor,
): Promise<PlanSchedule> {
  const { rows } = await pool.query<Row>(
    `UPDATE peak.drill_plan_schedules
        SET state = 'cancelled', finished_at = now(), error = 'cancelled by ' || $2
      WHERE id = $1 AND state = 'pending' RETURNING *`,
    [id, actor.author],
  );
  if (rows[0] !== undefined) return view(rows[0]);
  const found = await pool.query<Row>('SELECT * FROM peak.drill_plan_schedules WHERE id = $1', [
    id,
  ]);
  const row = found.rows[0];
  if (row === undefined)
    throw new PeakError(
      ErrorCodes.PLAN_NOT_FOUND,
      `no plan schedule ${id}; see 'peak plan schedules --all'`,
      {
        details: { id },
      },
    );
  throw new PeakError(
    ErrorCodes.PLAN_CONFLICT,
    `plan schedule ${id} is ${row.state}, not pending: only a pending one can be cancelled`,
    { details: { id, state: row.state } },
  );
}

/**
 * Runs every schedule due now (claimed one at a time, so nodes share the work and none runs
 * twice); resolves with how many this node ran.
 */
export async function runDueSchedules(
  cfg: ConfigPort,
  pool: pg.Pool,
  nodeId: string,
  logger: Logger,
): Promise<number> {
  let ran = 0;
  for (;;) {
    const { rows } = await pool.query<Row>(
      `UPDATE peak.drill_plan_schedules s
          SET state = 'running', claimed_by = $1, claimed_at = now()
        WHERE s.id = (
          SELECT id FROM peak.drill_plan_schedules
           WHERE (state = 'pending' AND due_at <= now())
              OR (state = 'running' AND claimed_at < now() - make_interval(secs => $2 / 1000.0))
           ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
        RETURNING s.*`,
      [nodeId, RECLAIM_MS],
    );
    const row = rows[0];
    if (row === undefined) return ran;
    ran++;
    const actor: Actor = {
      author: `${row.author} (scheduled)`,
      source: `schedule ${row.id} on ${nodeId}`,
    };
    const comment = row.comment || `scheduled for ${row.due_at.toISOString()}`;
    try {
      const run =
        row.action === 'apply'
          ? await applyPlan(cfg, pool, row.plan, actor, comment)
          : await rollbackPlan(cfg, pool, row.plan, actor, { comment });
      await pool.query(
        `UPDATE peak.drill_plan_schedules SET state = 'done', finished_at = now(), run_id = $2
          WHERE id = $1`,
        [row.id, run.id],
      );
      logger.info(
        { plan: row.plan, action: row.action, schedule: Number(row.id), run: run.id },
        'drill: scheduled plan run done',
      );
    } catch (err) {
      await pool.query(
        `UPDATE peak.drill_plan_schedules SET state = 'failed', finished_at = now(), error = $2
          WHERE id = $1`,
        [row.id, errorMessage(err)],
      );
      logger.warn(
        { plan: row.plan, action: row.action, schedule: Number(row.id), err },
        'drill: scheduled plan run refused',
      );
    }
  }
}
