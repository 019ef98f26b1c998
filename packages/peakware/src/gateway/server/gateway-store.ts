/**
 * The gateway's state in PostgreSQL (migration 0011): one table of objects (routes, apps,
 * keys, subscriptions), every change under one transaction-level advisory lock so revs
 * commit in the order they were taken (a gateway reading "after rev N" can never miss a
 * change that commits later with a smaller rev), announced with NOTIFY in the same
 * transaction. Quota leases and nonce claims are here too.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import { randomSecret } from '../../core/secrets.js';
import {
  type GatewayAppSpec,
  type GatewayChange,
  type GatewayKey,
  type GatewayObjectKind,
  type GatewayQuotaSpec,
  type GatewayRouteSpec,
  type GatewaySubscription,
  subscriptionId,
} from '../gateway-objects.js';
import { quotaPeriods } from '../quota-periods.js';
import { parsePattern, patternShape } from '../route-table.js';

/** The NOTIFY channel of gateway changes (payload: the rev). */
export const GATEWAY_CHANNEL = 'peak_gateway';

// pg_advisory_xact_lock key: "gateway state writes".
const WRITE_LOCK = '7354696311';

/** How long a tombstone is kept, ms (a gateway away longer gets a snapshot). */
const TOMBSTONE_MS = 24 * 3600_000;

type Db = pg.Pool | pg.PoolClient;

function notFound(what: string): PeakError {
  return new PeakError(
    ErrorCodes.GATEWAY_NOT_FOUND,
    `${what} does not exist; see 'peak gateway ${what.split(' ')[0]}s'`,
  );
}

/** Runs `fn` in one transaction on a pooled connection. */
async function withTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** Runs `fn` as one ordered write (see the file's comment). */
async function write<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(pool, async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
    return fn(c);
  });
}

async function putObject(
  c: pg.PoolClient,
  kind: GatewayObjectKind,
  id: string,
  value: unknown,
  shape: string | null = null,
): Promise<number> {
  // Checked before the upsert, under the write lock: a unique violation would abort the
  // transaction (a batch's other routes with it) before the clash could be named.
  if (shape !== null) {
    const { rows } = await c.query<{ id: string }>(
      'SELECT id FROM peak.gateway_objects WHERE shape = $1 AND value IS NOT NULL AND NOT (kind = $2 AND id = $3)',
      [shape, kind, id],
    );
    if (rows.length > 0) throw routeClash(id, rows[0]!.id);
  }
  const { rows } = await c.query<{ rev: string }>(
    `INSERT INTO peak.gateway_objects (kind, id, value, rev, shape)
     VALUES ($1, $2, $3, nextval('peak.gateway_rev'), $4)
     ON CONFLICT (kind, id) DO UPDATE
       SET value = EXCLUDED.value, rev = EXCLUDED.rev, shape = EXCLUDED.shape, updated_at = now()
     RETURNING rev`,
    [kind, id, JSON.stringify(value), shape],
  );
  const rev = Number(rows[0]!.rev);
  await c.query(`SELECT pg_notify('${GATEWAY_CHANNEL}', $1)`, [String(rev)]);
  return rev;
}

function routeClash(id: string, other: string): PeakError {
  return new PeakError(
    ErrorCodes.GATEWAY_INVALID,
    `route '${id}' has the same host, method and path as route '${other}'; change one of them or delete the other first`,
    { details: { input: 'path', conflictsWith: other } },
  );
}

async function deleteObject(
  c: pg.PoolClient,
  kind: GatewayObjectKind,
  id: string,
): Promise<boolean> {
  const { rows } = await c.query<{ rev: string }>(
    `UPDATE peak.gateway_objects SET value = NULL, shape = NULL, rev = nextval('peak.gateway_rev'), updated_at = now()
     WHERE kind = $1 AND id = $2 AND value IS NOT NULL RETURNING rev`,
    [kind, id],
  );
  if (rows.length === 0) return false;
  await c.query(`SELECT pg_notify('${GATEWAY_CHANNEL}', $1)`, [rows[0]!.rev]);
  return true;
}

async function getObject<T>(db: Db, kind: GatewayObjectKind, id: string): Promise<T | undefined> {
  const { rows } = await db.query<{ value: T }>(
    'SELECT value FROM peak.gateway_objects WHERE kind = $1 AND id = $2 AND value IS NOT NULL',
    [kind, id],
  );
  return rows[0]?.value;
}

async function listObjects<T>(db: Db, kind: GatewayObjectKind): Promise<T[]> {
  const { rows } = await db.query<{ value: T }>(
    'SELECT value FROM peak.gateway_objects WHERE kind = $1 AND value IS NOT NULL ORDER BY id',
    [kind],
  );
  return rows.map((r) => r.value);
}

/** The route key that must be unique among live routes: host, method, path shape. */
function routeShape(r: GatewayRouteSpec): string {
  return `${r.host ?? '*'} ${r.method} ${patternShape(r.path)}`;
}

function checkRoute(r: GatewayRouteSpec): void {
  try {
    parsePattern(r.path);
  } catch (err) {
    throw new PeakError(ErrorCodes.GATEWAY_INVALID, (err as Error).message, {
      details: { input: 'path' },
    });
  }
  if (
    r.target.kind === 'http' &&
    r.target.service === undefined &&
    (r.target.urls ?? []).length === 0
  )
    throw new PeakError(
      ErrorCodes.GATEWAY_INVALID,
      `route '${r.name}': an http target needs a service or urls`,
      {
        details: { input: 'target' },
      },
    );
  if (r.target.kind === 'mq' && r.method !== 'POST' && r.method !== 'PUT')
    throw new PeakError(
      ErrorCodes.GATEWAY_INVALID,
      `route '${r.name}': an mq target takes POST or PUT, not ${r.method}`,
      {
        details: { input: 'method' },
      },
    );
}

// ---------------------------------------------------------------- routes

/**
 * Creates or replaces one route in one statement (one round trip: the ordering lock, the
 * upsert and the NOTIFY together), the common change.
 */
async function putOneRoute(pool: pg.Pool, r: GatewayRouteSpec): Promise<number> {
  const shape = routeShape(r);
  try {
    const { rows } = await pool.query<{ rev: string }>(
      `WITH ordered AS (SELECT pg_advisory_xact_lock($5)),
       put AS (
         INSERT INTO peak.gateway_objects (kind, id, value, rev, shape)
         SELECT $1, $2, $3, nextval('peak.gateway_rev'), $4 FROM ordered
         ON CONFLICT (kind, id) DO UPDATE
           SET value = EXCLUDED.value, rev = EXCLUDED.rev, shape = EXCLUDED.shape, updated_at = now()
         RETURNING rev)
       SELECT rev, pg_notify('${GATEWAY_CHANNEL}', rev::text) FROM put`,
      ['route', r.name, JSON.stringify(r), shape, WRITE_LOCK],
    );
    return Number(rows[0]!.rev);
  } catch (err) {
    if ((err as { code?: string }).code !== '23505') throw err;
    // The conflict, worded by the transactional path.
    return write(pool, (c) => putObject(c, 'route', r.name, r, shape));
  }
}

/** Creates or replaces routes and deletes others, in one change. */
export async function putRoutes(
  pool: pg.Pool,
  routes: readonly GatewayRouteSpec[],
  deletes: readonly string[] = [],
): Promise<number> {
  for (const r of routes) checkRoute(r);
  if (routes.length === 1 && deletes.length === 0) return putOneRoute(pool, routes[0]!);
  return write(pool, async (c) => {
    let rev = 0;
    for (const name of deletes) await deleteObject(c, 'route', name);
    for (const r of routes) rev = await putObject(c, 'route', r.name, r, routeShape(r));
    return rev;
  });
}

/** Deletes a route. */
export async function deleteRoute(pool: pg.Pool, name: string): Promise<void> {
  const done = await write(pool, (c) => deleteObject(c, 'route', name));
  if (!done) throw notFound(`route '${name}'`);
}

/** One route. */
export async function getRoute(pool: pg.Pool, name: string): Promise<GatewayRouteSpec> {
  const r = await getObject<GatewayRouteSpec>(pool, 'route', name);
  if (r === undefined) throw notFound(`route '${name}'`);
  return r;
}

/** Every route, by name. */
export function listRoutes(pool: pg.Pool): Promise<GatewayRouteSpec[]> {
  return listObjects(pool, 'route');
}

// ---------------------------------------------------------------- apps and keys

/** A key as listed: everything but the secret. */
export type KeyView = Omit<GatewayKey, 'secret'>;

function keyView(k: GatewayKey): KeyView {
  const { secret: _secret, ...view } = k;
  return view;
}

/** Creates or replaces an app. */
export async function putApp(pool: pg.Pool, app: GatewayAppSpec): Promise<GatewayAppSpec> {
  await write(pool, (c) => putObject(c, 'app', app.name, app));
  return app;
}

/** Deletes an app with its keys and subscriptions. */
export async function deleteApp(pool: pg.Pool, name: string): Promise<void> {
  const done = await write(pool, async (c) => {
    if (!(await deleteObject(c, 'app', name))) return false;
    const { rows } = await c.query<{ kind: GatewayObjectKind; id: string }>(
      `SELECT kind, id FROM peak.gateway_objects
       WHERE value IS NOT NULL AND ((kind = 'key' AND value->>'app' = $1) OR (kind = 'subscription' AND value->>'app' = $1))`,
      [name],
    );
    for (const r of rows) await deleteObject(c, r.kind, r.id);
    return true;
  });
  if (!done) throw notFound(`app '${name}'`);
}

/** One app. */
export async function getApp(pool: pg.Pool, name: string): Promise<GatewayAppSpec> {
  const a = await getObject<GatewayAppSpec>(pool, 'app', name);
  if (a === undefined) throw notFound(`app '${name}'`);
  return a;
}

/** Every app. */
export function listApps(pool: pg.Pool): Promise<GatewayAppSpec[]> {
  return listObjects(pool, 'app');
}

/** An app's keys, without secrets, newest first. */
export async function listKeys(pool: pg.Pool, app: string): Promise<KeyView[]> {
  await getApp(pool, app);
  const { rows } = await pool.query<{ value: GatewayKey }>(
    `SELECT value FROM peak.gateway_objects WHERE kind = 'key' AND value IS NOT NULL AND value->>'app' = $1
     ORDER BY (value->>'createdAt')::bigint DESC, id`,
    [app],
  );
  return rows.map((r) => keyView(r.value));
}

/**
 * Issues a new key for `app` (the secret is in this answer only). With `overlapSeconds`
 * (a rotation), every other live key of the app expires that long from now: callers move
 * to the new key while the old one still works.
 */
export async function createKey(
  pool: pg.Pool,
  app: string,
  now: number,
  overlapSeconds?: number,
): Promise<GatewayKey> {
  return write(pool, async (c) => {
    if ((await getObject(c, 'app', app)) === undefined) throw notFound(`app '${app}'`);
    const key: GatewayKey = {
      id: randomSecret(12, 'gk_'),
      app,
      secret: randomSecret(32),
      createdAt: now,
      expiresAt: null,
      revoked: false,
    };
    if (overlapSeconds !== undefined) {
      const { rows } = await c.query<{ value: GatewayKey }>(
        `SELECT value FROM peak.gateway_objects WHERE kind = 'key' AND value IS NOT NULL AND value->>'app' = $1`,
        [app],
      );
      const until = now + overlapSeconds * 1000;
      for (const { value: old } of rows) {
        if (old.revoked || (old.expiresAt !== null && old.expiresAt <= until)) continue;
        await putObject(c, 'key', old.id, { ...old, expiresAt: until });
      }
    }
    await putObject(c, 'key', key.id, key);
    return key;
  });
}

/** Revokes a key at once. */
export async function revokeKey(pool: pg.Pool, id: string): Promise<KeyView> {
  return write(pool, async (c) => {
    const key = await getObject<GatewayKey>(c, 'key', id);
    if (key === undefined) throw notFound(`key '${id}'`);
    const revoked = { ...key, revoked: true };
    await putObject(c, 'key', id, revoked);
    return keyView(revoked);
  });
}

// ---------------------------------------------------------------- subscriptions

/** Subscriptions, optionally of one app, one API or in one status. */
export async function listSubscriptions(
  pool: pg.Pool,
  filter: { app?: string | undefined; api?: string | undefined; status?: string | undefined },
): Promise<GatewaySubscription[]> {
  const all = await listObjects<GatewaySubscription>(pool, 'subscription');
  return all.filter(
    (s) =>
      (filter.app === undefined || s.app === filter.app) &&
      (filter.api === undefined || s.api === filter.api) &&
      (filter.status === undefined || s.status === filter.status),
  );
}

/** An app asks for an API: a pending subscription (or the one it has, unchanged, unless it was refused). */
export async function requestSubscription(
  pool: pg.Pool,
  app: string,
  api: string,
  now: number,
  note?: string,
): Promise<GatewaySubscription> {
  return write(pool, async (c) => {
    if ((await getObject(c, 'app', app)) === undefined) throw notFound(`app '${app}'`);
    const id = subscriptionId(app, api);
    const held = await getObject<GatewaySubscription>(c, 'subscription', id);
    if (held !== undefined && (held.status === 'pending' || held.status === 'approved'))
      return held;
    const sub: GatewaySubscription = {
      app,
      api,
      status: 'pending',
      quota: held?.quota ?? {},
      requestedAt: now,
      decidedAt: null,
      note: note ?? null,
    };
    await putObject(c, 'subscription', id, sub);
    return sub;
  });
}

/** Approves, rejects or revokes a subscription; approval may set its quota. */
export async function decideSubscription(
  pool: pg.Pool,
  app: string,
  api: string,
  status: 'approved' | 'rejected' | 'revoked',
  now: number,
  change: { quota?: GatewayQuotaSpec | undefined; note?: string | undefined } = {},
): Promise<GatewaySubscription> {
  return write(pool, async (c) => {
    const id = subscriptionId(app, api);
    const held = await getObject<GatewaySubscription>(c, 'subscription', id);
    if (held === undefined) throw notFound(`subscription '${id}'`);
    const sub: GatewaySubscription = {
      ...held,
      status,
      decidedAt: now,
      ...(change.quota === undefined ? {} : { quota: change.quota }),
      ...(change.note === undefined ? {} : { note: change.note }),
    };
    await putObject(c, 'subscription', id, sub);
    return sub;
  });
}

/** Sets a subscription's quota (in force at every gateway with the next lease). */
export async function setQuota(
  pool: pg.Pool,
  app: string,
  api: string,
  quota: GatewayQuotaSpec,
): Promise<GatewaySubscription> {
  return write(pool, async (c) => {
    const id = subscriptionId(app, api);
    const held = await getObject<GatewaySubscription>(c, 'subscription', id);
    if (held === undefined) throw notFound(`subscription '${id}'`);
    const sub = { ...held, quota };
    await putObject(c, 'subscription', id, sub);
    return sub;
  });
}

// ---------------------------------------------------------------- the change feed

/** Every live object and the rev it is current at. */
export async function readSnapshot(db: Db): Promise<{ rev: number; objects: GatewayChange[] }> {
  const { rows } = await db.query<{
    kind: GatewayObjectKind;
    id: string;
    value: GatewayChange['value'];
    rev: string;
  }>('SELECT kind, id, value, rev FROM peak.gateway_objects WHERE value IS NOT NULL');
  const max = await db.query<{ rev: string | null }>(
    'SELECT max(rev) AS rev FROM peak.gateway_objects',
  );
  return {
    rev: Number(max.rows[0]?.rev ?? 0),
    objects: rows.map((r) => ({ kind: r.kind, id: r.id, value: r.value, rev: Number(r.rev) })),
  };
}

/** Changes after `since` (tombstones included), oldest first; undefined when `since` is older than the kept tombstones. */
export async function readChanges(db: Db, since: number): Promise<GatewayChange[] | undefined> {
  const meta = await db.query<{ pruned_rev: string }>('SELECT pruned_rev FROM peak.gateway_meta');
  if (since < Number(meta.rows[0]?.pruned_rev ?? 0)) return undefined;
  const { rows } = await db.query<{
    kind: GatewayObjectKind;
    id: string;
    value: GatewayChange['value'];
    rev: string;
  }>('SELECT kind, id, value, rev FROM peak.gateway_objects WHERE rev > $1 ORDER BY rev', [since]);
  return rows.map((r) => ({ kind: r.kind, id: r.id, value: r.value, rev: Number(r.rev) }));
}

/** Drops old tombstones and expired nonces. */
export async function sweep(pool: pg.Pool): Promise<void> {
  await write(pool, async (c) => {
    const { rows } = await c.query<{ rev: string | null }>(
      `WITH gone AS (DELETE FROM peak.gateway_objects WHERE value IS NULL AND updated_at < now() - $1 * interval '1 millisecond' RETURNING rev)
       SELECT max(rev) AS rev FROM gone`,
      [TOMBSTONE_MS],
    );
    if (rows[0]?.rev != null)
      await c.query('UPDATE peak.gateway_meta SET pruned_rev = greatest(pruned_rev, $1)', [
        rows[0].rev,
      ]);
  });
  await pool.query('DELETE FROM peak.gateway_nonces WHERE expires_at < now()');
}

// ---------------------------------------------------------------- nonces and quotas

/** Records nonces; for each, true when it was fresh (not seen within its window). */
export async function claimNonces(
  pool: pg.Pool,
  items: readonly { key: string; nonce: string }[],
  ttlMs: number,
): Promise<boolean[]> {
  if (items.length === 0) return [];
  const { rows } = await pool.query<{ key_id: string; nonce: string }>(
    `INSERT INTO peak.gateway_nonces (key_id, nonce, expires_at)
     SELECT DISTINCT k, n, now() + $3 * interval '1 millisecond' FROM unnest($1::text[], $2::text[]) AS t(k, n)
     ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at
       WHERE peak.gateway_nonces.expires_at < now()
     RETURNING key_id, nonce`,
    [items.map((i) => i.key), items.map((i) => i.nonce), ttlMs],
  );
  const fresh = new Set(rows.map((r) => `${r.key_id}\n${r.nonce}`));
  // A nonce twice in one batch: the first is fresh, the second a replay.
  const seen = new Set<string>();
  return items.map((i) => {
    const k = `${i.key}\n${i.nonce}`;
    const ok = fresh.has(k) && !seen.has(k);
    seen.add(k);
    return ok;
  });
}

/** What a lease request got. */
export interface QuotaLease {
  /** Calls granted (0: the quota is spent, or the subscription is not approved). */
  granted: number;
  /** True when the subscription has no quota: count nothing, call freely. */
  unlimited: boolean;
  /** When the grant lapses (the end of the day or month it was counted in), epoch ms. */
  validUntil: number;
  /** When calls may resume if nothing was granted, epoch ms. */
  resetAt: number;
  /** Calls left in the tighter period after this grant. */
  remaining: number;
  /** The periods the grant was counted in (to give unused calls back). */
  day: string;
  month: string;
}

/**
 * Takes up to `want` calls of `app`'s quota for `api`, counted at once in the day and the
 * month (both rows locked, so two gateways can never take the same call). A grant is at
 * most an eighth of what is left (at least 1), so near the end of a quota the gateways
 * take one call at a time and none sits on calls another needs.
 */
export async function leaseQuota(
  pool: pg.Pool,
  app: string,
  api: string,
  want: number,
  now: number,
): Promise<QuotaLease> {
  const p = quotaPeriods(now);
  const base = { day: p.day, month: p.month };
  const sub = await getObject<GatewaySubscription>(pool, 'subscription', subscriptionId(app, api));
  if (sub === undefined || sub.status !== 'approved')
    return { granted: 0, unlimited: false, validUntil: now, resetAt: now, remaining: 0, ...base };
  const { perDay, perMonth } = sub.quota;
  if (perDay === undefined && perMonth === undefined)
    return {
      granted: want,
      unlimited: true,
      validUntil: p.dayEnd,
      resetAt: now,
      remaining: Number.MAX_SAFE_INTEGER,
      ...base,
    };
  return withTransaction(pool, async (c) => {
    const periods: { period: 'day' | 'month'; start: string; limit: number; end: number }[] = [];
    if (perDay !== undefined)
      periods.push({ period: 'day', start: p.day, limit: perDay, end: p.dayEnd });
    if (perMonth !== undefined)
      periods.push({ period: 'month', start: p.month, limit: perMonth, end: p.monthEnd });
    let remaining = Number.MAX_SAFE_INTEGER;
    let resetAt = now;
    for (const x of periods) {
      const { rows } = await c.query<{ used: string }>(
        `INSERT INTO peak.gateway_quota_usage (app, api, period, period_start) VALUES ($1, $2, $3, $4)
         ON CONFLICT (app, api, period, period_start) DO UPDATE SET used = peak.gateway_quota_usage.used
         RETURNING used`,
        [app, api, x.period, x.start],
      );
      const left = Math.max(0, x.limit - Number(rows[0]!.used));
      if (left < remaining) remaining = left;
      if (left === 0) resetAt = Math.max(resetAt, x.end);
    }
    const granted = Math.max(0, Math.min(want, remaining, Math.max(1, Math.floor(remaining / 8))));
    if (granted > 0) {
      for (const x of periods) {
        await c.query(
          'UPDATE peak.gateway_quota_usage SET used = used + $5 WHERE app = $1 AND api = $2 AND period = $3 AND period_start = $4',
          [app, api, x.period, x.start, granted],
        );
      }
    }
    return {
      granted,
      unlimited: false,
      validUntil: Math.min(...periods.map((x) => x.end)),
      resetAt: granted > 0 ? now : resetAt,
      remaining: remaining - granted,
      ...base,
    };
  });
}

/** Gives back calls a gateway leased and did not use. */
export async function returnQuota(
  pool: pg.Pool,
  app: string,
  api: string,
  units: number,
  day: string,
  month: string,
): Promise<void> {
  if (units <= 0) return;
  await pool.query(
    `UPDATE peak.gateway_quota_usage SET used = greatest(0, used - $3)
     WHERE app = $1 AND api = $2 AND ((period = 'day' AND period_start = $4) OR (period = 'month' AND period_start = $5))`,
    [app, api, units, day, month],
  );
}

/** Calls a gateway admitted for one subscription without a quota, in one UTC day and month. */
export interface QuotaUse {
  app: string;
  api: string;
  units: number;
  /** The UTC day (YYYY-MM-DD) and month (its first day) the calls were taken in. */
  day: string;
  month: string;
}

/**
 * Counts calls gateways admitted for subscriptions without a quota (metering: they were
 * not leased), in the days and months they were taken in: one statement for a gateway's
 * whole report, its rows summed per counter and written in key order (two gateways'
 * reports lock the rows they share in the same order).
 */
export async function recordQuotaUse(pool: pg.Pool, uses: readonly QuotaUse[]): Promise<void> {
  if (uses.length === 0) return;
  await pool.query(
    `INSERT INTO peak.gateway_quota_usage (app, api, period, period_start, used)
     SELECT u.app, u.api, p.period, CASE p.period WHEN 'day' THEN u.day ELSE u.month END, sum(u.units)
       FROM unnest($1::text[], $2::text[], $3::bigint[], $4::date[], $5::date[])
              AS u(app, api, units, day, month)
       CROSS JOIN (VALUES ('day'), ('month')) AS p(period)
      GROUP BY 1, 2, 3, 4
      ORDER BY 1, 2, 3, 4
     ON CONFLICT (app, api, period, period_start)
     DO UPDATE SET used = peak.gateway_quota_usage.used + excluded.used`,
    [
      uses.map((u) => u.app),
      uses.map((u) => u.api),
      uses.map((u) => u.units),
      uses.map((u) => u.day),
      uses.map((u) => u.month),
    ],
  );
}

/** Quota usage of the current day and month (of `now`), per app and API. */
export async function quotaUsage(
  pool: pg.Pool,
  now: number,
  filter: { app?: string | undefined; api?: string | undefined },
): Promise<
  {
    app: string;
    api: string;
    status: string;
    perDay: number | null;
    perMonth: number | null;
    usedToday: number;
    usedThisMonth: number;
    day: string;
    month: string;
  }[]
> {
  const p = quotaPeriods(now);
  const subs = await listSubscriptions(pool, filter);
  const { rows } = await pool.query<{ app: string; api: string; period: string; used: string }>(
    `SELECT app, api, period, used FROM peak.gateway_quota_usage
     WHERE (period = 'day' AND period_start = $1) OR (period = 'month' AND period_start = $2)`,
    [p.day, p.month],
  );
  const used = new Map(rows.map((r) => [`${r.app}\n${r.api}\n${r.period}`, Number(r.used)]));
  return subs.map((s) => ({
    app: s.app,
    api: s.api,
    status: s.status,
    perDay: s.quota.perDay ?? null,
    perMonth: s.quota.perMonth ?? null,
    usedToday: used.get(`${s.app}\n${s.api}\nday`) ?? 0,
    usedThisMonth: used.get(`${s.app}\n${s.api}\nmonth`) ?? 0,
    day: p.day,
    month: p.month,
  }));
}
