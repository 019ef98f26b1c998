/**
 * The config center's SQL. Every change runs in one transaction that locks the item row,
 * checks the writer's expected version (optimistic: no lost update), validates the value,
 * writes the version, the audit row and `NOTIFY peak_config` together, so no change is ever
 * stored without being pushed and audited.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import { REGISTRY_CHANNEL } from '../../registry/server/registry-store.js';
import {
  type ConfigSchema,
  checkSchema,
  type SchemaProblem,
  validateValue,
} from '../config-schema.js';

/** The NOTIFY channel config changes are announced on (payload: `app/group/key`). */
export const CONFIG_CHANNEL = 'peak_config';
/** Largest value accepted, bytes (UTF-8). */
export const DEFAULT_MAX_VALUE_BYTES = 256 * 1024;

/** How a value is stored and delivered. */
export type ConfigFormat = 'json' | 'text';

/** Who changed something, and from where. */
export interface Actor {
  author: string;
  source: string;
}

/** Largest NOTIFY payload carrying the state itself (PostgreSQL's limit is 8000 bytes). */
const MAX_STATE_PAYLOAD = 7000;

/** A released state carried in a NOTIFY payload, so hubs push it without reading it back. */
export interface NotifiedState {
  app: string;
  group: string;
  key: string;
  version: number;
  format: ConfigFormat;
  value: string;
}

/**
 * The payload announcing a release: the state itself (JSON) when small, else the item's
 * `app/group/key` for hubs to read back.
 */
function notifyPayload(r: ItemRef, version: number, format: ConfigFormat, value: string): string {
  const state: NotifiedState = { ...r, version, format, value };
  const json = JSON.stringify(state);
  return Buffer.byteLength(json, 'utf8') <= MAX_STATE_PAYLOAD ? json : label(r);
}

/** One item's coordinates. */
export interface ItemRef {
  app: string;
  group: string;
  key: string;
}

/** A released item as the API shows it. */
export interface ItemView extends ItemRef {
  version: number;
  format: ConfigFormat;
  value: string;
  schema: ConfigSchema | null;
  updatedBy: string;
  updatedAt: string;
}

/** A gray release in progress. */
export interface GrayView {
  baseVersion: number;
  format: ConfigFormat;
  value: string;
  tags: string[];
  instanceIds: string[];
  author: string;
  comment: string;
  createdAt: string;
}

/** One released version. */
export interface VersionView {
  version: number;
  format: ConfigFormat;
  value: string;
  author: string;
  comment: string;
  source: string;
  createdAt: string;
}

/** One audit row. */
export interface AuditView extends ItemRef {
  id: number;
  at: string;
  actor: string;
  source: string;
  action: string;
  version: number | null;
  detail: Record<string, unknown>;
}

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

/** Throws PEAK_INVALID_ARGUMENT unless app, group and key are 1-128 of [A-Za-z0-9_.-]. */
export function checkRef(ref: ItemRef): ItemRef {
  for (const [what, v] of Object.entries(ref)) {
    if (typeof v !== 'string' || !NAME.test(v)) {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `config ${what} '${String(v)}' is not valid; use 1-128 letters, digits or _ . -`,
        { details: { input: what } },
      );
    }
  }
  return ref;
}

function label(r: ItemRef): string {
  return `${r.app}/${r.group}/${r.key}`;
}

function invalid(r: ItemRef, problems: SchemaProblem[], what: string): PeakError {
  const first = problems[0]!;
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
  return new PeakError(
    ErrorCodes.CONFIG_INVALID,
    `${label(r)}: ${what} refused, the released value stays: ${first.path} ${first.reason}${more}`,
    { details: { path: first.path, problems: problems.slice(0, 20) } },
  );
}

/**
 * Parses and checks a value: size, JSON syntax, schema. Returns the text to store (JSON is
 * stored as sent, so a rollback restores it byte for byte).
 */
export function checkValue(
  r: ItemRef,
  format: ConfigFormat,
  value: string,
  schema: ConfigSchema | null,
  maxBytes: number,
): string {
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes > maxBytes) {
    throw new PeakError(
      ErrorCodes.CONFIG_TOO_LARGE,
      `${label(r)}: value is ${bytes} bytes, over the limit of ${maxBytes}; split it into several keys`,
      { details: { bytes, limit: maxBytes } },
    );
  }
  if (format === 'text') {
    if (schema !== null && schema.$peak === undefined) {
      const problems = validateValue(value, schema);
      if (problems.length > 0) throw invalid(r, problems, 'value');
    }
    return value;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err) {
    throw new PeakError(
      ErrorCodes.CONFIG_INVALID,
      `${label(r)}: value is not valid JSON (${(err as Error).message}); send format 'text' for plain text`,
      { details: { path: '$', problems: [{ path: '$', reason: (err as Error).message }] } },
    );
  }
  if (schema !== null) {
    const problems = validateValue(parsed, schema);
    if (problems.length > 0) throw invalid(r, problems, 'value');
  }
  return value;
}

interface ItemRow {
  app: string;
  grp: string;
  key: string;
  version: number;
  format: ConfigFormat;
  value: string;
  schema: ConfigSchema | null;
  updated_by: string;
  updated_at: Date;
}

interface GrayRow {
  base_version: number;
  format: ConfigFormat;
  value: string;
  tags: string[];
  instance_ids: string[];
  author: string;
  comment: string;
  created_at: Date;
}

function itemView(r: ItemRow): ItemView {
  return {
    app: r.app,
    group: r.grp,
    key: r.key,
    version: r.version,
    format: r.format,
    value: r.value,
    schema: r.schema,
    updatedBy: r.updated_by,
    updatedAt: r.updated_at.toISOString(),
  };
}

function grayView(r: GrayRow): GrayView {
  return {
    baseVersion: r.base_version,
    format: r.format,
    value: r.value,
    tags: r.tags,
    instanceIds: r.instance_ids,
    author: r.author,
    comment: r.comment,
    createdAt: r.created_at.toISOString(),
  };
}

function notFound(r: ItemRef, hint = "publish it first with 'peak config set'"): PeakError {
  return new PeakError(
    ErrorCodes.CONFIG_NOT_FOUND,
    `config item ${label(r)} does not exist; ${hint}`,
    {
      details: { app: r.app, group: r.group, key: r.key },
    },
  );
}

async function tx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    if ((err as { code?: string }).code === '23505') {
      throw new PeakError(
        ErrorCodes.CONFIG_CONFLICT,
        'another writer created this item at the same time; read it again and retry',
        { cause: err },
      );
    }
    throw err;
  } finally {
    c.release();
  }
}

async function lockItem(
  c: pg.PoolClient,
  r: ItemRef,
): Promise<(ItemRow & { has_gray: boolean }) | undefined> {
  const { rows } = await c.query<ItemRow & { has_gray: boolean }>(
    `SELECT i.*, g.app IS NOT NULL AS has_gray
       FROM peak.config_items i
       LEFT JOIN peak.config_gray g ON g.app = i.app AND g.grp = i.grp AND g.key = i.key
      WHERE i.app = $1 AND i.grp = $2 AND i.key = $3
        FOR UPDATE OF i`,
    [r.app, r.group, r.key],
  );
  return rows[0];
}

async function audit(
  c: pg.PoolClient,
  r: ItemRef,
  actor: Actor,
  action: string,
  version: number | null,
  detail: Record<string, unknown>,
): Promise<void> {
  await c.query(
    `INSERT INTO peak.config_audit (actor, source, action, app, grp, key, version, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [actor.author, actor.source, action, r.app, r.group, r.key, version, JSON.stringify(detail)],
  );
  await c.query('SELECT pg_notify($1, $2)', [CONFIG_CHANNEL, label(r)]);
}

function checkExpected(r: ItemRef, current: number, expected: number | undefined): void {
  if (expected !== undefined && expected !== current) {
    throw new PeakError(
      ErrorCodes.CONFIG_CONFLICT,
      `${label(r)} is at version ${current}, not ${expected} as the writer expected; someone published in between: read it again, merge, and retry`,
      { details: { current, expected } },
    );
  }
}

async function release(
  c: pg.PoolClient,
  r: ItemRef,
  row: ItemRow | undefined,
  format: ConfigFormat,
  value: string,
  schema: ConfigSchema | null,
  actor: Actor,
  comment: string,
  action: string,
  detail: Record<string, unknown>,
): Promise<number> {
  const version = (row?.version ?? 0) + 1;
  // One statement (one round trip): version row, item upsert, audit row, NOTIFY. A creator
  // racing another creator fails on the version's primary key (→ PEAK_CONFIG_CONFLICT).
  await c.query(
    `WITH v AS (
       INSERT INTO peak.config_versions (app, grp, key, version, format, value, author, comment, source)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING 1
     ), i AS (
       INSERT INTO peak.config_items (app, grp, key, version, format, value, schema, updated_by)
       VALUES ($1, $2, $3, $4, $5, $6, $10, $7)
       ON CONFLICT (app, grp, key) DO UPDATE SET version = EXCLUDED.version,
         format = EXCLUDED.format, value = EXCLUDED.value, schema = EXCLUDED.schema,
         updated_by = EXCLUDED.updated_by, updated_at = now()
       RETURNING 1
     ), a AS (
       INSERT INTO peak.config_audit (actor, source, action, app, grp, key, version, detail)
       VALUES ($7, $9, $11, $1, $2, $3, $4, $12) RETURNING 1
     )
     SELECT pg_notify($13, $14) FROM v, i, a`,
    [
      r.app,
      r.group,
      r.key,
      version,
      format,
      value,
      actor.author,
      comment,
      actor.source,
      schema === null ? null : JSON.stringify(schema),
      action,
      JSON.stringify({ comment, ...detail }),
      CONFIG_CHANNEL,
      notifyPayload(r, version, format, value),
    ],
  );
  if (schema?.$peak === 'lb-weights') await applyWeights(c, value);
  return version;
}

/**
 * Governance of load-balancer weights: an `lb-weights` item's value is applied to the
 * registry in the same transaction, and the registry pushes it to every consumer.
 */
async function applyWeights(c: pg.PoolClient, value: string): Promise<void> {
  await c.query(
    `WITH u AS (
       UPDATE peak.registry_instances r SET weight = w.value::int
         FROM jsonb_each_text($1::jsonb) w
        WHERE r.instance_id = w.key
       RETURNING r.service_key)
     SELECT pg_notify('${REGISTRY_CHANNEL}', k) FROM (SELECT DISTINCT service_key AS k FROM u) d`,
    [value],
  );
}

/** What {@link publish} takes. */
export interface PublishInput {
  format: ConfigFormat;
  value: string;
  /** A new schema; `null` removes it; absent keeps the item's schema. */
  schema?: ConfigSchema | null;
  /** The version the writer read (0: the item must not exist yet); absent: no check. */
  expectedVersion?: number;
  comment: string;
}

function refuseWhileGray(r: ItemRef, row: { has_gray: boolean } | undefined): void {
  if (row?.has_gray === true) {
    throw new PeakError(
      ErrorCodes.CONFIG_CONFLICT,
      `${label(r)} has a gray release in progress; 'peak config promote' or 'peak config gray --abort' it first`,
      { details: { gray: true } },
    );
  }
}

/** Publishes a new version of an item (creating it at version 1). */
export async function publish(
  pool: pg.Pool,
  r: ItemRef,
  input: PublishInput,
  actor: Actor,
  maxBytes = DEFAULT_MAX_VALUE_BYTES,
): Promise<{ version: number }> {
  if (input.schema !== undefined && input.schema !== null) {
    const problems = checkSchema(input.schema);
    if (problems.length > 0) throw invalid(r, problems, 'schema');
  }
  return tx(pool, async (c) => {
    const row = await lockItem(c, r);
    checkExpected(r, row?.version ?? 0, input.expectedVersion);
    refuseWhileGray(r, row);
    const schema = input.schema === undefined ? (row?.schema ?? null) : input.schema;
    const value = checkValue(r, input.format, input.value, schema, maxBytes);
    const version = await release(
      c,
      r,
      row,
      input.format,
      value,
      schema,
      actor,
      input.comment,
      'publish',
      {},
    );
    return { version };
  });
}

/** Publishes the exact value of an earlier version as a new version. */
export async function rollback(
  pool: pg.Pool,
  r: ItemRef,
  toVersion: number,
  expectedVersion: number | undefined,
  comment: string,
  actor: Actor,
  maxBytes = DEFAULT_MAX_VALUE_BYTES,
): Promise<{ version: number; restored: number }> {
  return tx(pool, async (c) => {
    const row = await lockItem(c, r);
    if (row === undefined) throw notFound(r);
    checkExpected(r, row.version, expectedVersion);
    refuseWhileGray(r, row);
    const { rows } = await c.query<{ format: ConfigFormat; value: string }>(
      'SELECT format, value FROM peak.config_versions WHERE app = $1 AND grp = $2 AND key = $3 AND version = $4',
      [r.app, r.group, r.key, toVersion],
    );
    const old = rows[0];
    if (old === undefined)
      throw notFound(r, `it has no version ${toVersion}; see 'peak config history'`);
    checkValue(r, old.format, old.value, row.schema, maxBytes);
    const version = await release(
      c,
      r,
      row,
      old.format,
      old.value,
      row.schema,
      actor,
      comment,
      'rollback',
      {
        restored: toVersion,
      },
    );
    return { version, restored: toVersion };
  });
}

/** Starts (or replaces) a gray release: the value reaches only instances matching tags or ids. */
export async function startGray(
  pool: pg.Pool,
  r: ItemRef,
  input: {
    format: ConfigFormat;
    value: string;
    tags: string[];
    instanceIds: string[];
    comment: string;
  },
  actor: Actor,
  maxBytes = DEFAULT_MAX_VALUE_BYTES,
): Promise<{ baseVersion: number }> {
  if (input.tags.length === 0 && input.instanceIds.length === 0) {
    throw new PeakError(
      ErrorCodes.INVALID_ARGUMENT,
      'a gray release needs at least one instance tag or instance id to go to first',
      { details: { input: 'tags' } },
    );
  }
  return tx(pool, async (c) => {
    const row = await lockItem(c, r);
    if (row === undefined)
      throw notFound(r, 'gray releases change an existing item; publish it first');
    if (row.schema?.$peak === 'lb-weights') {
      throw new PeakError(
        ErrorCodes.INVALID_ARGUMENT,
        `${label(r)} holds load-balancer weights, which the control plane applies for every consumer at once; publish them instead of a gray release`,
        { details: { input: 'gray' } },
      );
    }
    const value = checkValue(r, input.format, input.value, row.schema, maxBytes);
    await c.query(
      `INSERT INTO peak.config_gray (app, grp, key, base_version, format, value, tags, instance_ids, author, comment)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (app, grp, key) DO UPDATE SET base_version = EXCLUDED.base_version,
         format = EXCLUDED.format, value = EXCLUDED.value, tags = EXCLUDED.tags,
         instance_ids = EXCLUDED.instance_ids, author = EXCLUDED.author,
         comment = EXCLUDED.comment, created_at = now()`,
      [
        r.app,
        r.group,
        r.key,
        row.version,
        input.format,
        value,
        input.tags,
        input.instanceIds,
        actor.author,
        input.comment,
      ],
    );
    await audit(c, r, actor, 'gray', row.version, {
      comment: input.comment,
      tags: input.tags,
      instanceIds: input.instanceIds,
    });
    return { baseVersion: row.version };
  });
}

/** Releases the gray value to every instance as a new version. */
export async function promoteGray(
  pool: pg.Pool,
  r: ItemRef,
  comment: string,
  actor: Actor,
): Promise<{ version: number }> {
  return tx(pool, async (c) => {
    const row = await lockItem(c, r);
    if (row === undefined) throw notFound(r);
    const { rows } = await c.query<GrayRow>(
      'DELETE FROM peak.config_gray WHERE app = $1 AND grp = $2 AND key = $3 RETURNING *',
      [r.app, r.group, r.key],
    );
    const gray = rows[0];
    if (gray === undefined)
      throw notFound(r, "it has no gray release in progress; start one with 'peak config gray'");
    checkExpected(r, row.version, gray.base_version);
    const version = await release(
      c,
      r,
      row,
      gray.format,
      gray.value,
      row.schema,
      actor,
      comment || gray.comment,
      'promote',
      {
        tags: gray.tags,
        instanceIds: gray.instance_ids,
      },
    );
    return { version };
  });
}

/** Ends a gray release without releasing it: gray instances go back to the released value. */
export async function abortGray(
  pool: pg.Pool,
  r: ItemRef,
  actor: Actor,
): Promise<{ aborted: boolean }> {
  return tx(pool, async (c) => {
    const { rows } = await c.query<GrayRow>(
      'DELETE FROM peak.config_gray WHERE app = $1 AND grp = $2 AND key = $3 RETURNING *',
      [r.app, r.group, r.key],
    );
    const gray = rows[0];
    if (gray === undefined) throw notFound(r, 'it has no gray release in progress');
    await audit(c, r, actor, 'abort', gray.base_version, {});
    return { aborted: true };
  });
}

/** One item with its gray release, if any. */
export async function getItem(
  db: pg.Pool,
  r: ItemRef,
): Promise<{ item: ItemView; gray: GrayView | null } | undefined> {
  const items = await readItems(db, r.app, r);
  return items[0];
}

/** Every item of an app (or one item), each with its gray release. */
export async function readItems(
  db: pg.Pool,
  app: string,
  only?: ItemRef,
): Promise<{ item: ItemView; gray: GrayView | null }[]> {
  const where = only === undefined ? 'i.app = $1' : 'i.app = $1 AND i.grp = $2 AND i.key = $3';
  const params = only === undefined ? [app] : [app, only.group, only.key];
  const { rows } = await db.query<ItemRow & { gray: GrayRow | null }>(
    `SELECT i.*, CASE WHEN g.app IS NULL THEN NULL ELSE json_build_object(
        'base_version', g.base_version, 'format', g.format, 'value', g.value, 'tags', g.tags,
        'instance_ids', g.instance_ids, 'author', g.author, 'comment', g.comment,
        'created_at', g.created_at) END AS gray
       FROM peak.config_items i
       LEFT JOIN peak.config_gray g ON g.app = i.app AND g.grp = i.grp AND g.key = i.key
      WHERE ${where} ORDER BY i.grp, i.key`,
    params,
  );
  return rows.map((row) => ({
    item: itemView(row),
    gray:
      row.gray === null
        ? null
        : grayView({ ...row.gray, created_at: new Date(row.gray.created_at) }),
  }));
}

/** Apps with their item counts. */
export async function listApps(db: pg.Pool): Promise<{ app: string; items: number }[]> {
  const { rows } = await db.query<{ app: string; items: number }>(
    'SELECT app, count(*)::int AS items FROM peak.config_items GROUP BY app ORDER BY app',
  );
  return rows;
}

/** Released versions of an item, newest first. */
export async function history(db: pg.Pool, r: ItemRef, limit: number): Promise<VersionView[]> {
  const { rows } = await db.query<{
    version: number;
    format: ConfigFormat;
    value: string;
    author: string;
    comment: string;
    source: string;
    created_at: Date;
  }>(
    `SELECT version, format, value, author, comment, source, created_at FROM peak.config_versions
      WHERE app = $1 AND grp = $2 AND key = $3 ORDER BY version DESC LIMIT $4`,
    [r.app, r.group, r.key, limit],
  );
  if (rows.length === 0) throw notFound(r);
  return rows.map((v) => ({
    version: v.version,
    format: v.format,
    value: v.value,
    author: v.author,
    comment: v.comment,
    source: v.source,
    createdAt: v.created_at.toISOString(),
  }));
}

/** One released version. */
export async function getVersion(db: pg.Pool, r: ItemRef, version: number): Promise<VersionView> {
  const { rows } = await db.query<{
    version: number;
    format: ConfigFormat;
    value: string;
    author: string;
    comment: string;
    source: string;
    created_at: Date;
  }>(
    `SELECT version, format, value, author, comment, source, created_at FROM peak.config_versions
      WHERE app = $1 AND grp = $2 AND key = $3 AND version = $4`,
    [r.app, r.group, r.key, version],
  );
  const v = rows[0];
  if (v === undefined) throw notFound(r, `it has no version ${version}; see 'peak config history'`);
  return {
    version: v.version,
    format: v.format,
    value: v.value,
    author: v.author,
    comment: v.comment,
    source: v.source,
    createdAt: v.created_at.toISOString(),
  };
}

/** Audit rows, newest first, optionally for one app / item. */
export async function readAudit(
  db: pg.Pool,
  filter: { app?: string; group?: string; key?: string },
  limit: number,
): Promise<AuditView[]> {
  const cond: string[] = [];
  const params: unknown[] = [];
  for (const [col, v] of [
    ['app', filter.app],
    ['grp', filter.group],
    ['key', filter.key],
  ] as const) {
    if (v !== undefined) {
      params.push(v);
      cond.push(`${col} = $${params.length}`);
    }
  }
  params.push(limit);
  const { rows } = await db.query<{
    id: string;
    at: Date;
    actor: string;
    source: string;
    action: string;
    app: string;
    grp: string;
    key: string;
    version: number | null;
    detail: Record<string, unknown>;
  }>(
    `SELECT * FROM peak.config_audit ${cond.length > 0 ? `WHERE ${cond.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map((a) => ({
    id: Number(a.id),
    at: a.at.toISOString(),
    actor: a.actor,
    source: a.source,
    action: a.action,
    app: a.app,
    group: a.grp,
    key: a.key,
    version: a.version,
    detail: a.detail,
  }));
}
