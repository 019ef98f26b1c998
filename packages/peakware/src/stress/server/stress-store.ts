/**
 * The stress module's rows: runs (registered, steered, finished with their report and
 * isolation check), the agents sharing a run, and the capacity measured per service.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { CapacityFigure, CapacityStep } from '../capacity-plan.js';
import type { IsolationReport } from '../isolation-check.js';
import type { LoadModel } from '../load-model.js';
import type { StressReport } from '../stress-report.js';

/** A run as `peak stress ls` lists it. */
export interface StressRunSummary {
  id: string;
  scenario: string;
  status: 'running' | 'finished';
  model: LoadModel;
  /** The target set mid-run (rate or virtual users), if any. */
  target: number | null;
  startedAt: string;
  finishedAt: string | null;
  stopReason: string | null;
  /** Totals and latency of the finished run. */
  totals: StressReport['totals'] | null;
  latency: StressReport['latency'] | null;
  /** True / false once an isolation check was stored; null without one. */
  isolated: boolean | null;
}

/** A run with its report and isolation check. */
export interface StressRunRecord extends StressRunSummary {
  report: StressReport | null;
  isolation: IsolationReport | null;
  /** Agents that joined (id and last heartbeat). */
  agents: { agentId: string; lastSeen: string }[];
}

/** What generators and agents poll while a run goes. */
export interface RunControl {
  status: 'running' | 'finished';
  target: number | null;
  stop: boolean;
}

function notFound(id: string): PeakError {
  return new PeakError(ErrorCodes.STRESS_NOT_FOUND, `no stress run '${id}'`, {
    details: { input: 'id' },
  });
}

const COLUMNS = `id, scenario, status, model, target, started_at, finished_at, stop_reason,
  report->'totals' AS totals, report->'latency' AS latency, isolation->'ok' AS isolated`;

function summaryOf(r: Record<string, unknown>): StressRunSummary {
  return {
    id: r.id as string,
    scenario: r.scenario as string,
    status: r.status as 'running' | 'finished',
    model: r.model as LoadModel,
    target: r.target as number | null,
    startedAt: (r.started_at as Date).toISOString(),
    finishedAt: r.finished_at === null ? null : (r.finished_at as Date).toISOString(),
    stopReason: r.stop_reason as string | null,
    totals: (r.totals ?? null) as StressReport['totals'] | null,
    latency: (r.latency ?? null) as StressReport['latency'] | null,
    isolated: (r.isolated ?? null) as boolean | null,
  };
}

/** Registers a run (again: a no-op, so agents and a restarted CLI may repeat it). */
export async function createRun(
  pool: pg.Pool,
  run: { id: string; scenario: string; model: LoadModel },
): Promise<StressRunSummary> {
  await pool.query(
    `INSERT INTO peak.stress_runs (id, scenario, status, model) VALUES ($1, $2, 'running', $3)
     ON CONFLICT (id) DO NOTHING`,
    [run.id, run.scenario, JSON.stringify(run.model)],
  );
  return (await getRun(pool, run.id)) as StressRunSummary;
}

/** The newest runs, newest first. */
export async function listRuns(pool: pg.Pool, limit: number): Promise<StressRunSummary[]> {
  const { rows } = await pool.query(
    `SELECT ${COLUMNS} FROM peak.stress_runs ORDER BY started_at DESC, id LIMIT $1`,
    [limit],
  );
  return rows.map(summaryOf);
}

/** One run with its report (PEAK_STRESS_NOT_FOUND when unknown). */
export async function getRun(pool: pg.Pool, id: string): Promise<StressRunRecord> {
  const { rows } = await pool.query(
    `SELECT ${COLUMNS}, report, isolation FROM peak.stress_runs WHERE id = $1`,
    [id],
  );
  const r = rows[0];
  if (r === undefined) throw notFound(id);
  const agents = await pool.query<{ agent_id: string; last_seen: Date }>(
    'SELECT agent_id, last_seen FROM peak.stress_agents WHERE run_id = $1 ORDER BY joined_at, agent_id',
    [id],
  );
  return {
    ...summaryOf(r),
    report: r.report ?? null,
    isolation: r.isolation ?? null,
    agents: agents.rows.map((a) => ({ agentId: a.agent_id, lastSeen: a.last_seen.toISOString() })),
  };
}

/** Changes a running run's target (null: back to the model) or asks it to stop. */
export async function steerRun(
  pool: pg.Pool,
  id: string,
  change: { target?: number | null; stop?: boolean },
): Promise<RunControl> {
  const { rows } = await pool.query(
    `UPDATE peak.stress_runs
        SET target = CASE WHEN $2 THEN $3::double precision ELSE target END,
            stop_requested = stop_requested OR $4
      WHERE id = $1
      RETURNING status, target, stop_requested`,
    [id, change.target !== undefined, change.target ?? null, change.stop === true],
  );
  const r = rows[0];
  if (r === undefined) throw notFound(id);
  return { status: r.status, target: r.target, stop: r.stop_requested };
}

/** What a generator polls. */
export async function runControl(pool: pg.Pool, id: string): Promise<RunControl> {
  return steerRun(pool, id, {});
}

/** Stores the report (and isolation check) and marks the run finished. */
export async function finishRun(
  pool: pg.Pool,
  id: string,
  report: StressReport,
  isolation: IsolationReport | undefined,
): Promise<void> {
  const { rowCount } = await pool.query(
    `UPDATE peak.stress_runs
        SET status = 'finished', finished_at = now(), stop_reason = $2, report = $3,
            isolation = COALESCE($4, isolation)
      WHERE id = $1`,
    [
      id,
      report.stopReason,
      JSON.stringify(report),
      isolation === undefined ? null : JSON.stringify(isolation),
    ],
  );
  if (rowCount === 0) throw notFound(id);
}

/** Stores an isolation check of a run (after its report, or again later). */
export async function putIsolation(
  pool: pg.Pool,
  id: string,
  isolation: IsolationReport,
): Promise<void> {
  const { rowCount } = await pool.query(
    'UPDATE peak.stress_runs SET isolation = $2 WHERE id = $1',
    [id, JSON.stringify(isolation)],
  );
  if (rowCount === 0) throw notFound(id);
}

/**
 * An agent's heartbeat: joins it to the run if new; answers its place among the agents seen
 * in the last `liveMs` (ordered by joining) so each sends `1 / count` of the run's target.
 */
export async function agentHeartbeat(
  pool: pg.Pool,
  runId: string,
  agentId: string,
  liveMs: number,
): Promise<RunControl & { index: number; count: number }> {
  const control = await runControl(pool, runId);
  await pool.query(
    `INSERT INTO peak.stress_agents (run_id, agent_id) VALUES ($1, $2)
     ON CONFLICT (run_id, agent_id) DO UPDATE SET last_seen = now()`,
    [runId, agentId],
  );
  const { rows } = await pool.query<{ agent_id: string }>(
    `SELECT agent_id FROM peak.stress_agents
      WHERE run_id = $1 AND last_seen > now() - make_interval(secs => $2::double precision / 1000)
      ORDER BY joined_at, agent_id`,
    [runId, liveMs],
  );
  const ids = rows.map((r) => r.agent_id);
  return { ...control, index: Math.max(0, ids.indexOf(agentId)), count: Math.max(1, ids.length) };
}

/** Stores one agent's report of a run. */
export async function putAgentReport(
  pool: pg.Pool,
  runId: string,
  agentId: string,
  report: StressReport,
): Promise<void> {
  const { rowCount } = await pool.query(
    'UPDATE peak.stress_agents SET report = $3, last_seen = now() WHERE run_id = $1 AND agent_id = $2',
    [runId, agentId, JSON.stringify(report)],
  );
  if (rowCount === 0) throw notFound(`${runId}/${agentId}`);
}

/** The reports the agents of a run have stored. */
export async function agentReports(pool: pg.Pool, runId: string): Promise<StressReport[]> {
  const { rows } = await pool.query<{ report: StressReport }>(
    'SELECT report FROM peak.stress_agents WHERE run_id = $1 AND report IS NOT NULL ORDER BY joined_at, agent_id',
    [runId],
  );
  return rows.map((r) => r.report);
}

/** Stores a service's measured capacity (the latest probe wins). */
export async function putCapacity(pool: pg.Pool, figure: CapacityFigure): Promise<void> {
  await pool.query(
    `INSERT INTO peak.stress_capacity (service, instance, max_qps, p99_ms, sla, steps, measured_at)
     VALUES ($1, $2, $3, $4, $5, $6, now())
     ON CONFLICT (service) DO UPDATE SET instance = $2, max_qps = $3, p99_ms = $4, sla = $5,
       steps = $6, measured_at = now()`,
    [
      figure.service,
      figure.instance,
      figure.maxQps,
      figure.p99Ms ?? null,
      JSON.stringify(figure.sla),
      JSON.stringify(figure.steps),
    ],
  );
}

/** Every service's measured capacity. */
export async function listCapacity(pool: pg.Pool): Promise<CapacityFigure[]> {
  const { rows } = await pool.query(
    'SELECT service, instance, max_qps, p99_ms, sla, steps, measured_at FROM peak.stress_capacity ORDER BY service',
  );
  return rows.map((r) => ({
    service: r.service,
    instance: r.instance,
    maxQps: r.max_qps,
    ...(r.p99_ms === null ? {} : { p99Ms: r.p99_ms }),
    sla: r.sla,
    steps: r.steps as CapacityStep[],
    measuredAt: (r.measured_at as Date).toISOString(),
  }));
}
