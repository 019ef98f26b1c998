/**
 * The registry's SQL: every statement that changes an instance row also announces the
 * service key on channel `peak_registry` in the same statement, so no change is ever
 * stored without being pushed.
 */
import type pg from 'pg';
import type { ServiceInstance } from '../service-instance.js';

/** The NOTIFY channel registry changes are announced on. */
export const REGISTRY_CHANNEL = 'peak_registry';

interface Row {
  instance_id: string;
  service: string;
  version: string;
  grp: string;
  host: string;
  port: number;
  weight: number;
  tags: string[];
  metadata: Record<string, string>;
  status: 'up' | 'offline';
  started_at: Date;
  lease_expires_at: Date;
}

/** An instance row as the API shows it. */
export type InstanceView = ServiceInstance & { leaseExpiresAt: string };

function toView(r: Row): InstanceView {
  return {
    instanceId: r.instance_id,
    service: r.service,
    version: r.version,
    group: r.grp,
    host: r.host,
    port: r.port,
    weight: r.weight,
    tags: r.tags,
    metadata: r.metadata,
    status: r.status,
    startedAt: r.started_at.getTime(),
    leaseExpiresAt: r.lease_expires_at.toISOString(),
  };
}

const COLUMNS =
  'instance_id, service, version, grp, host, port, weight, tags, metadata, status, started_at, lease_expires_at';

/** Instances of one service key. */
export async function listInstances(pool: pg.Pool, key: string): Promise<InstanceView[]> {
  const { rows } = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM peak.registry_instances
      WHERE service_key = $1 AND lease_expires_at > now() ORDER BY instance_id`,
    [key],
  );
  return rows.map(toView);
}

/** Every live instance, for `peak rpc ls`. */
export async function listAll(pool: pg.Pool): Promise<InstanceView[]> {
  const { rows } = await pool.query<Row>(
    `SELECT ${COLUMNS} FROM peak.registry_instances
      WHERE lease_expires_at > now() ORDER BY service_key, instance_id`,
  );
  return rows.map(toView);
}

/**
 * Inserts or refreshes a registration (an admin's offline status survives re-registration).
 * `owner` is the registering app (undefined: an operator, who may refresh any instance);
 * an instance another app registered is left alone and `false` returned.
 */
export async function upsertInstance(
  pool: pg.Pool,
  key: string,
  i: Omit<ServiceInstance, 'startedAt' | 'status'> & { startedAt: number; status?: string },
  leaseMs: number,
  owner?: string,
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `WITH u AS (
       INSERT INTO peak.registry_instances
         (instance_id, service_key, service, version, grp, host, port, weight, tags, metadata,
          status, started_at, lease_expires_at, app)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12 / 1000.0),
               now() + make_interval(secs => $13 / 1000.0), $14)
       ON CONFLICT (instance_id, service_key) DO UPDATE SET
         host = EXCLUDED.host, port = EXCLUDED.port, weight = EXCLUDED.weight,
         tags = EXCLUDED.tags, metadata = EXCLUDED.metadata,
         started_at = EXCLUDED.started_at, lease_expires_at = EXCLUDED.lease_expires_at
       WHERE $14::text IS NULL OR peak.registry_instances.app IS NOT DISTINCT FROM $14::text
       RETURNING service_key)
     SELECT pg_notify('${REGISTRY_CHANNEL}', service_key) FROM u`,
    [
      i.instanceId,
      key,
      i.service,
      i.version,
      i.group,
      i.host,
      i.port,
      i.weight,
      i.tags,
      JSON.stringify(i.metadata),
      i.status ?? 'up',
      i.startedAt,
      leaseMs,
      owner ?? null,
    ],
  );
  return (rowCount ?? 0) > 0;
}

/**
 * Extends the leases of an instance's rows (only `owner`'s when given); returns how many
 * rows it renewed.
 */
export async function renewLease(
  pool: pg.Pool,
  instanceId: string,
  leaseMs: number,
  owner?: string,
): Promise<number> {
  const { rowCount } = await pool.query(
    `UPDATE peak.registry_instances
        SET lease_expires_at = now() + make_interval(secs => $2 / 1000.0)
      WHERE instance_id = $1 AND lease_expires_at > now()
        AND ($3::text IS NULL OR app = $3::text)`,
    [instanceId, leaseMs, owner ?? null],
  );
  return rowCount ?? 0;
}

/**
 * Changes weight, tags or status of an instance's rows (one key or all; only `owner`'s
 * when given); returns rows changed.
 */
export async function patchInstance(
  pool: pg.Pool,
  instanceId: string,
  key: string | undefined,
  patch: { weight?: number; tags?: string[]; status?: string },
  owner?: string,
): Promise<number> {
  const { rowCount } = await pool.query(
    `WITH u AS (
       UPDATE peak.registry_instances SET
         weight = COALESCE($3, weight), tags = COALESCE($4, tags), status = COALESCE($5, status)
       WHERE instance_id = $1 AND ($2::text IS NULL OR service_key = $2)
         AND ($6::text IS NULL OR app = $6::text)
       RETURNING service_key)
     SELECT pg_notify('${REGISTRY_CHANNEL}', service_key) FROM u`,
    [
      instanceId,
      key ?? null,
      patch.weight ?? null,
      patch.tags ?? null,
      patch.status ?? null,
      owner ?? null,
    ],
  );
  return rowCount ?? 0;
}

/** Removes an instance's rows (one key or all; only `owner`'s when given); returns rows removed. */
export async function deleteInstance(
  pool: pg.Pool,
  instanceId: string,
  key: string | undefined,
  owner?: string,
): Promise<number> {
  const { rowCount } = await pool.query(
    `WITH d AS (
       DELETE FROM peak.registry_instances
        WHERE instance_id = $1 AND ($2::text IS NULL OR service_key = $2)
          AND ($3::text IS NULL OR app = $3::text)
       RETURNING service_key)
     SELECT pg_notify('${REGISTRY_CHANNEL}', service_key) FROM d`,
    [instanceId, key ?? null, owner ?? null],
  );
  return rowCount ?? 0;
}

/** The service keys and statuses instance `instanceId` is registered with (under `key` only, if given). */
export async function instanceRegistrations(
  pool: pg.Pool,
  instanceId: string,
  key: string | undefined,
): Promise<{ serviceKey: string; status: string }[]> {
  const { rows } = await pool.query<{ serviceKey: string; status: string }>(
    `SELECT service_key AS "serviceKey", status FROM peak.registry_instances
      WHERE instance_id = $1 AND ($2::text IS NULL OR service_key = $2) ORDER BY service_key`,
    [instanceId, key ?? null],
  );
  return rows;
}

/**
 * Whether instance `instanceId` has live rows registered by someone other than `owner`
 * (to tell "not yours" from "not there" after a change by `owner` touched nothing).
 */
export async function registeredByOther(
  pool: pg.Pool,
  instanceId: string,
  owner: string,
): Promise<boolean> {
  const { rowCount } = await pool.query(
    `SELECT 1 FROM peak.registry_instances
      WHERE instance_id = $1 AND lease_expires_at > now() AND app IS DISTINCT FROM $2 LIMIT 1`,
    [instanceId, owner],
  );
  return (rowCount ?? 0) > 0;
}

/** Removes rows whose lease ran out (any node may run it); returns how many. */
export async function sweepExpired(pool: pg.Pool): Promise<number> {
  const { rowCount } = await pool.query(
    `WITH d AS (
       DELETE FROM peak.registry_instances WHERE lease_expires_at <= now()
       RETURNING service_key)
     SELECT pg_notify('${REGISTRY_CHANNEL}', service_key) FROM d`,
  );
  return rowCount ?? 0;
}
