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
 *
 * A schedule may repeat (`every`: a fixed interval of at least a minute, a day for a daily
 * sale): claiming an occurrence inserts the series' next one in the same statement (the
 * first due time after now, so a control plane that was down skips what it missed instead
 * of running it late several times). Cancelling the pending occurrence ends the series.
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
/** The shortest interval of a repeating schedule. */
export const MIN_EVERY_MS = 60_000;

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
  /** A repeating schedule's interval, ms (its next occurrence is made when this one starts). */
  everyMs: number | null;
  /** The id of the series' first occurrence (a repeating schedule), else null. */
  series: number | null;
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
  every_ms: string | null;
  series: string | null;
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
    everyMs: r.every_ms === null ? null : Number(r.every_ms),
    series: r.series === null ? null : Number(r.series),
  };
}

/** What to schedule: an apply at `at`, a rollback at `at`, or both (the rollback later). */
export interface ScheduleRequest {
  action: 'apply' | 'rollback';
  /** Epoch ms. */
  at: number;
  /** With an apply: also roll it back at this time (epoch ms, after `at`). */
  rollbackAt?: number;
  /** Repeat every this many ms (at least a minute; each run of the pair repeats). */
  everyMs?: number;
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
  const every = req.everyMs;
  if (every !== undefined) {
    if (!Number.isSafeInteger(every) || every < MIN_EVERY_MS)
      throw invalid(
        `every must be a whole number of ms of at least ${MIN_EVERY_MS} (a minute), got ${every}`,
        'every',
      );
    if (req.rollbackAt !== undefined && req.rollbackAt - req.at >= every)
      throw invalid(
        `the rollback comes ${req.rollbackAt - req.at} ms after the apply, not before the next apply ${every} ms later; shorten the window or lengthen every`,
        'rollbackAt',
      );
  }
  // A repeating row is its own series' first occurrence (series = id).
  const { rows } = await pool.query<Row>(
    `INSERT INTO peak.drill_plan_schedules
       (id, plan, action, due_at, author, source, comment, every_ms, series)
     SELECT n, $1, a, to_timestamp(t / 1000.0), $4, $5, $6, $7,
            CASE WHEN $7::bigint IS NULL THEN NULL ELSE n END
       FROM (SELECT nextval(pg_get_serial_sequence('peak.drill_plan_schedules', 'id')) AS n, a, t
               FROM unnest($2::text[], $3::float8[]) AS x(a, t)) y
     RETURNING *`,
    [
      name,
      runs.map((r) => r.action),
      runs.map((r) => r.at),
      actor.author,
      actor.source,
      req.comment ?? '',
      every ?? null,
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
    // The claim; a repeating row's next occurrence (the first due time after now) is made
    // in the same statement, only when it is claimed from pending (not on a reclaim).
    const { rows } = await pool.query<Row>(
      `WITH claimed AS (
         UPDATE peak.drill_plan_schedules s
            SET state = 'running', claimed_by = $1, claimed_at = now()
           FROM (SELECT id, state AS was FROM peak.drill_plan_schedules
                  WHERE (state = 'pending' AND due_at <= now())
                     OR (state = 'running' AND claimed_at < now() - make_interval(secs => $2 / 1000.0))
                  ORDER BY due_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) d
          WHERE s.id = d.id
          RETURNING s.*, d.was),
       next AS (
         INSERT INTO peak.drill_plan_schedules
           (plan, action, due_at, author, source, comment, every_ms, series)
         SELECT plan, action,
                due_at + make_interval(secs => every_ms / 1000.0
                  * (floor(extract(epoch FROM now() - due_at) * 1000 / every_ms) + 1)),
                author, source, comment, every_ms, series
           FROM claimed WHERE every_ms IS NOT NULL AND was = 'pending')
       SELECT * FROM claimed`,
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
