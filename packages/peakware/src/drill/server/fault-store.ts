/**
 * Faults on the control plane: agents' reports in `peak.drill_reports`, and each app's
 * fault table in its config item `drill/faults`, written through the config center's
 * publish (versions, push, audit) with the version read, retried on a concurrent change.
 * Injecting resolves the scope's instances and tags to the boots live now, so a fault
 * reaches exactly the processes it was aimed at and no later incarnation of them.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { ErrorCodes, isPeakError, PeakError } from '../../core/errors.js';
import type { AgentReport, HeldFault } from '../drill-agent.js';
import {
  checkFaultRequest,
  type FaultRequest,
  type FaultSpec,
  type FaultTableValue,
} from '../fault-spec.js';
import type { Actor, ConfigPort } from './config-port.js';

/** Reports older than this do not count as live instances, ms. */
export const LIVE_WITHIN_MS = 10_000;

/** One instance as `peak drill status` shows it. */
export interface InstanceStatus {
  app: string;
  instanceId: string;
  boot: string;
  service: string | null;
  tags: string[];
  active: HeldFault[];
  ended: HeldFault[];
  /** Milliseconds since its last report. */
  ageMs: number;
  live: boolean;
}

/** An app's drill state: the published faults and every instance's own report. */
export interface DrillStatus {
  app: string;
  faults: FaultSpec[];
  version: number;
  instances: InstanceStatus[];
}

function invalid(problems: string[], what: string): PeakError {
  return new PeakError(
    ErrorCodes.DRILL_INVALID,
    `${what}: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
    { details: { problems } },
  );
}

/** Stores one agent report (the newest per boot). */
export async function saveReport(pool: pg.Pool, r: AgentReport): Promise<void> {
  await pool.query(
    `INSERT INTO peak.drill_reports (boot, app, instance_id, service, tags, active, ended, reported_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, now())
     ON CONFLICT (boot) DO UPDATE SET app = EXCLUDED.app, instance_id = EXCLUDED.instance_id,
       service = EXCLUDED.service, tags = EXCLUDED.tags, active = EXCLUDED.active,
       ended = EXCLUDED.ended, reported_at = now()`,
    [
      r.boot,
      r.app,
      r.instanceId,
      r.service ?? null,
      r.tags,
      JSON.stringify(r.active),
      JSON.stringify(r.ended),
    ],
  );
}

/** Forgets reports older than an hour. */
export async function pruneReports(pool: pg.Pool): Promise<void> {
  await pool.query(`DELETE FROM peak.drill_reports WHERE reported_at < now() - interval '1 hour'`);
}

async function readTable(
  cfg: ConfigPort,
  pool: pg.Pool,
  app: string,
): Promise<{ faults: FaultSpec[]; version: number }> {
  const found = await cfg.get(pool, { app, group: 'drill', key: 'faults' });
  if (found === undefined) return { faults: [], version: 0 };
  const value = JSON.parse(found.value) as Partial<FaultTableValue>;
  return { faults: Array.isArray(value.faults) ? value.faults : [], version: found.version };
}

/** Faults past their duration (control-plane clock, with a second's grace). */
function live(faults: FaultSpec[], now: number): FaultSpec[] {
  return faults.filter((f) => f.createdAt + f.durationMs + 1000 > now);
}

/**
 * Changes an app's fault table: `change` gets the live faults and returns the new list;
 * published with the version read, retried when another writer came between.
 */
async function updateTable(
  cfg: ConfigPort,
  pool: pg.Pool,
  app: string,
  actor: Actor,
  comment: string,
  change: (faults: FaultSpec[]) => FaultSpec[],
): Promise<{ faults: FaultSpec[]; version: number }> {
  for (let attempt = 0; ; attempt++) {
    const { faults, version } = await readTable(cfg, pool, app);
    const next = change(live(faults, Date.now()));
    try {
      const r = await cfg.publish(
        pool,
        { app, group: 'drill', key: 'faults' },
        {
          format: 'json',
          value: JSON.stringify({ faults: next } satisfies FaultTableValue),
          expectedVersion: version,
          comment,
        },
        actor,
      );
      return { faults: next, version: r.version };
    } catch (err) {
      if (attempt < 5 && isPeakError(err, ErrorCodes.CONFIG_CONFLICT)) continue;
      throw err;
    }
  }
}

async function liveReports(pool: pg.Pool, app: string): Promise<InstanceStatus[]> {
  const { rows } = await pool.query<{
    app: string;
    instance_id: string;
    boot: string;
    service: string | null;
    tags: string[];
    active: HeldFault[];
    ended: HeldFault[];
    age_ms: number;
  }>(
    `SELECT app, instance_id, boot, service, tags, active, ended,
            (extract(epoch FROM now() - reported_at) * 1000)::float8 AS age_ms
       FROM peak.drill_reports WHERE app = $1 AND reported_at > now() - interval '10 minutes'
      ORDER BY instance_id, reported_at DESC`,
    [app],
  );
  return rows.map((r) => ({
    app: r.app,
    instanceId: r.instance_id,
    boot: r.boot,
    service: r.service,
    tags: r.tags,
    active: r.active,
    ended: r.ended,
    ageMs: Math.round(r.age_ms),
    live: r.age_ms < LIVE_WITHIN_MS,
  }));
}

/**
 * Injects faults into an app: each is checked, its scope resolved to the boots of live
 * instances (PEAK_DRILL_NO_TARGET when none matches), and all are published together.
 */
export async function injectFaults(
  cfg: ConfigPort,
  pool: pg.Pool,
  app: string,
  requests: readonly FaultRequest[],
  actor: Actor,
): Promise<{ faults: FaultSpec[]; version: number }> {
  if (requests.length === 0) throw invalid(['faults: give at least one fault'], 'inject');
  for (const [i, req] of requests.entries()) {
    const problems = checkFaultRequest(req);
    if (problems.length > 0)
      throw invalid(
        problems.map((p) => `faults[${i}].${p}`),
        'inject',
      );
  }
  const instances = (await liveReports(pool, app)).filter((i) => i.live);
  const now = Date.now();
  const specs: FaultSpec[] = requests.map((req, i) => {
    const wantIds = req.scope?.instances;
    const wantTags = req.scope?.tags;
    const boots = instances
      .filter((inst) => wantIds === undefined || wantIds.includes(inst.instanceId))
      .filter((inst) => wantTags === undefined || inst.tags.some((t) => wantTags.includes(t)))
      .map((inst) => inst.boot);
    if (boots.length === 0)
      throw new PeakError(
        ErrorCodes.DRILL_NO_TARGET,
        `faults[${i}]: no live instance of app '${app}' matches its scope (${instances.length} live: ${
          instances
            .map((x) => x.instanceId)
            .slice(0, 10)
            .join(', ') || 'none'
        }); is the DrillAgent started and reporting?`,
        { details: { app, live: instances.length } },
      );
    return { ...req, id: `f-${randomBytes(5).toString('hex')}`, boots, createdAt: now };
  });
  const drills = [...new Set(specs.map((s) => s.drill ?? '-'))].join(',');
  const r = await updateTable(cfg, pool, app, actor, `drill inject ${drills}`, (faults) => [
    ...faults,
    ...specs,
  ]);
  return { faults: specs, version: r.version };
}

/** Stops an app's faults: those of `drill`, those with the given ids, or all. */
export async function stopFaults(
  cfg: ConfigPort,
  pool: pg.Pool,
  app: string,
  which: { drill?: string; ids?: readonly string[] },
  actor: Actor,
): Promise<{ stopped: string[]; version: number }> {
  const hit = (f: FaultSpec) =>
    (which.drill === undefined || f.drill === which.drill) &&
    (which.ids === undefined || which.ids.includes(f.id));
  let stopped: string[] = [];
  const r = await updateTable(
    cfg,
    pool,
    app,
    actor,
    `drill stop ${which.drill ?? 'all'}`,
    (faults) => {
      stopped = faults.filter(hit).map((f) => f.id);
      return faults.filter((f) => !hit(f));
    },
  );
  return { stopped, version: r.version };
}

/** Drops expired faults from an app's table (no publish when none expired). */
export async function sweepFaults(
  cfg: ConfigPort,
  pool: pg.Pool,
  app: string,
  actor: Actor,
): Promise<void> {
  const { faults } = await readTable(cfg, pool, app);
  if (live(faults, Date.now()).length === faults.length) return;
  await updateTable(cfg, pool, app, actor, 'drill sweep: expired faults removed', (f) => f);
}

/** Apps with a non-empty fault table. */
export async function appsWithFaults(pool: pg.Pool): Promise<string[]> {
  const { rows } = await pool.query<{ app: string }>(
    `SELECT app FROM peak.config_items WHERE grp = 'drill' AND key = 'faults' AND value <> '{"faults":[]}'`,
  );
  return rows.map((r) => r.app);
}

/** An app's faults and every instance's report. */
export async function drillStatus(
  cfg: ConfigPort,
  pool: pg.Pool,
  app: string,
): Promise<DrillStatus> {
  const { faults, version } = await readTable(cfg, pool, app);
  return {
    app,
    faults: live(faults, Date.now()),
    version,
    instances: await liveReports(pool, app),
  };
}
