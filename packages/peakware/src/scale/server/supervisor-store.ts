/**
 * Supervisors' reports (`peak.scale_supervisors`, the last one of each) and the orders
 * they are answered with: per service the primary version (the app file's, or the one a
 * release promoted) at the count the scaling evaluator set (or the file's), and a
 * release's gray group beside it.
 */
import type pg from 'pg';
import type {
  DesiredGroup,
  InstanceReport,
  ReportedService,
  SupervisorOrders,
  SupervisorReport,
} from '../supervisor-report.js';

/** Reports older than this do not count: the supervisor is gone or cut off, ms. */
export const SUPERVISOR_LIVE_MS = 10_000;

/** A release's gray group of a service, as the orders carry it. */
export interface GrayGroup {
  service: string;
  version: string;
  command: string;
  count: number;
}

/** One service of an app as `peak scale status` shows it. */
export interface ServiceStatus {
  app: string;
  service: string;
  /** The count the control plane wants of the primary version (null: the file's). */
  desired: number | null;
  /** The version it runs as primary (null: the file's). */
  primaryVersion: string | null;
  /** Every instance of it the live supervisors report. */
  instances: (InstanceReport & { supervisorId: string })[];
}

/** One supervisor as `peak scale status` shows it. */
export interface SupervisorStatus {
  supervisorId: string;
  app: string;
  host: string;
  pid: number;
  /** Milliseconds since its last report. */
  ageMs: number;
  live: boolean;
  services: ReportedService[];
}

/** An app's supervisors and services. */
export interface ScaleStatus {
  app: string;
  supervisors: SupervisorStatus[];
  services: ServiceStatus[];
}

/** Stores a supervisor's report. */
export async function saveReport(pool: pg.Pool, r: SupervisorReport): Promise<void> {
  await pool.query(
    `INSERT INTO peak.scale_supervisors (supervisor_id, app, host, pid, services, instances, reported_at)
     VALUES ($1, $2, $3, $4, $5, $6, now())
     ON CONFLICT (supervisor_id) DO UPDATE SET app = $2, host = $3, pid = $4, services = $5,
       instances = $6, reported_at = now()`,
    [r.supervisorId, r.app, r.host, r.pid, JSON.stringify(r.services), JSON.stringify(r.instances)],
  );
}

/** What a supervisor should run, given its report and the releases in progress. */
export async function ordersFor(
  pool: pg.Pool,
  r: SupervisorReport,
  gray: readonly GrayGroup[],
): Promise<SupervisorOrders> {
  const { rows } = await pool.query<{
    service: string;
    desired: number | null;
    primary_version: string | null;
    primary_command: string | null;
  }>(
    `SELECT service, desired, primary_version, primary_command FROM peak.scale_services
      WHERE app = $1 AND service = ANY($2::text[])`,
    [r.app, r.services.map((s) => s.name)],
  );
  const desired: Record<string, DesiredGroup[]> = {};
  for (const s of r.services) {
    const row = rows.find((x) => x.service === s.name);
    const version = row?.primary_version ?? s.version;
    const groups: DesiredGroup[] = [
      {
        version,
        command: row?.primary_command ?? s.command,
        count: row?.desired ?? s.instances,
        gray: false,
      },
    ];
    for (const g of gray)
      if (g.service === s.name && g.version !== version)
        groups.push({ version: g.version, command: g.command, count: g.count, gray: true });
    desired[s.name] = groups;
  }
  return { desired };
}

interface SupervisorRow {
  supervisor_id: string;
  app: string;
  host: string;
  pid: number;
  services: ReportedService[];
  instances: InstanceReport[];
  age_ms: number;
}

/** The supervisors of an app (or of every app), newest report first. */
export async function supervisors(pool: pg.Pool, app?: string): Promise<SupervisorRow[]> {
  const { rows } = await pool.query<SupervisorRow>(
    `SELECT supervisor_id, app, host, pid, services, instances,
            (extract(epoch FROM now() - reported_at) * 1000)::float8 AS age_ms
       FROM peak.scale_supervisors WHERE ($1::text IS NULL OR app = $1)
      ORDER BY reported_at DESC`,
    [app ?? null],
  );
  return rows;
}

/** The live instances of one service, over every live supervisor of its app. */
export async function liveInstances(
  pool: pg.Pool,
  app: string,
  service: string,
): Promise<(InstanceReport & { supervisorId: string })[]> {
  const out: (InstanceReport & { supervisorId: string })[] = [];
  for (const s of await supervisors(pool, app)) {
    if (s.age_ms > SUPERVISOR_LIVE_MS) continue;
    for (const i of s.instances)
      if (i.service === service) out.push({ ...i, supervisorId: s.supervisor_id });
  }
  return out;
}

/** An app's supervisors and services, for `peak scale status`. */
export async function scaleStatus(pool: pg.Pool, app: string): Promise<ScaleStatus> {
  const sups = await supervisors(pool, app);
  const { rows } = await pool.query<{
    service: string;
    desired: number | null;
    primary_version: string | null;
  }>('SELECT service, desired, primary_version FROM peak.scale_services WHERE app = $1', [app]);
  const names = new Set<string>(rows.map((r) => r.service));
  for (const s of sups) for (const svc of s.services) names.add(svc.name);
  const services: ServiceStatus[] = [...names].sort().map((service) => {
    const row = rows.find((r) => r.service === service);
    return {
      app,
      service,
      desired: row?.desired ?? null,
      primaryVersion: row?.primary_version ?? null,
      instances: sups
        .filter((s) => s.age_ms <= SUPERVISOR_LIVE_MS)
        .flatMap((s) =>
          s.instances
            .filter((i) => i.service === service)
            .map((i) => ({ ...i, supervisorId: s.supervisor_id })),
        ),
    };
  });
  return {
    app,
    supervisors: sups.map((s) => ({
      supervisorId: s.supervisor_id,
      app: s.app,
      host: s.host,
      pid: s.pid,
      ageMs: Math.round(s.age_ms),
      live: s.age_ms <= SUPERVISOR_LIVE_MS,
      services: s.services,
    })),
    services,
  };
}
