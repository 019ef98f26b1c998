/**
 * The config center's SQL. Every change runs in one transaction that locks the item row,
 * checks the writer's expected version (optimistic: no lost update), validates the value,
 * writes the version, the audit row and `NOTIFY peak_config` together, so no change is ever
 * stored without being pushed and audited. This file holds the writes and is the store's one
 * import point: it re-exports the shapes (config-views.ts) and the reads (config-reads.ts).
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import { REGISTRY_CHANNEL } from '../../registry/server/registry-store.js';
import { type ConfigSchema, checkSchema } from '../config-schema.js';
import {
  type Actor,
  CONFIG_CHANNEL,
  type ConfigFormat,
  checkValue,
  DEFAULT_MAX_VALUE_BYTES,
  type GrayRow,
  type ItemRef,
  type ItemRow,
  invalid,
  label,
  notFound,
  notifyPayload,
} from './config-views.js';

export * from './config-reads.js';
export * from './config-views.js';

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
  // An item removed earlier keeps its versions: a new one continues after the last of them.
  const version = (row?.version ?? (await lastVersion(c, r))) + 1;
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

/** The newest version an item ever had (0: none), for an item created again after `remove`. */
async function lastVersion(c: pg.PoolClient, r: ItemRef): Promise<number> {
  const { rows } = await c.query<{ v: number }>(
    'SELECT coalesce(max(version), 0)::int AS v FROM peak.config_versions WHERE app = $1 AND grp = $2 AND key = $3',
    [r.app, r.group, r.key],
  );
  return rows[0]?.v ?? 0;
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

/**
 * Removes an item (as Nacos and Apollo do): its released value goes, its versions and audit
 * trail stay (`history`, `audit` still read them; created again, it continues after its
 * last version), and watchers are told it is gone. Refused while a gray release is in
 * progress, and with `expectedVersion` unless the item is at that version.
 */
export async function removeItem(
  pool: pg.Pool,
  r: ItemRef,
  input: { expectedVersion?: number; comment: string },
  actor: Actor,
): Promise<{ removed: true; version: number }> {
  return tx(pool, async (c) => {
    const row = await lockItem(c, r);
    if (row === undefined) throw notFound(r, `see 'peak config get ${r.app}'`);
    checkExpected(r, row.version, input.expectedVersion);
    refuseWhileGray(r, row);
    await c.query('DELETE FROM peak.config_items WHERE app = $1 AND grp = $2 AND key = $3', [
      r.app,
      r.group,
      r.key,
    ]);
    await audit(c, r, actor, 'delete', row.version, { comment: input.comment });
    return { removed: true, version: row.version };
  });
}

/** One change of {@link publishBatch}. */
export interface BatchChange {
  ref: ItemRef;
  /** The value to publish; ignored when `restore` is given. */
  format: ConfigFormat;
  value: string;
  /** A schema for an item created here; absent keeps the item's own. */
  schema?: ConfigSchema | null;
  /** Refuse the whole batch unless the item is at this version (0: must not exist). */
  expectedVersion?: number;
  /** Publish the exact value of this earlier version instead (a rollback). */
  restore?: number;
}

/** What {@link publishBatch} did to one item. */
export interface BatchResult {
  ref: ItemRef;
  /** The version before the batch touched it (null: it did not exist). */
  previous: number | null;
  /** The version it published. */
  version: number;
}

/**
 * Publishes several changes in one transaction: every item is locked first (in one order,
 * so two batches cannot deadlock), each change is checked as a single publish would be
 * (expected version, gray release, value against the item's schema), and any refusal rolls
 * the whole batch back. Changes run in the order given; an item may appear more than once.
 * Plans apply and roll back through it.
 */
export async function publishBatch(
  pool: pg.Pool,
  changes: readonly BatchChange[],
  actor: Actor,
  comment: string,
  action: 'publish' | 'rollback',
  maxBytes = DEFAULT_MAX_VALUE_BYTES,
): Promise<BatchResult[]> {
  for (const ch of changes) {
    if (ch.schema !== undefined && ch.schema !== null) {
      const problems = checkSchema(ch.schema);
      if (problems.length > 0) throw invalid(ch.ref, problems, 'schema');
    }
  }
  return tx(pool, async (c) => {
    const labels = [...new Set(changes.map((ch) => label(ch.ref)))].sort();
    const first = new Map<string, number | null>();
    for (const l of labels) {
      const ch = changes.find((x) => label(x.ref) === l)!;
      first.set(l, (await lockItem(c, ch.ref))?.version ?? null);
    }
    const out: BatchResult[] = [];
    for (const ch of changes) {
      const row = await lockItem(c, ch.ref);
      checkExpected(ch.ref, row?.version ?? 0, ch.expectedVersion);
      refuseWhileGray(ch.ref, row);
      const schema =
        ch.schema === undefined || row !== undefined ? (row?.schema ?? null) : ch.schema;
      let format = ch.format;
      let value = ch.value;
      if (ch.restore !== undefined) {
        const { rows } = await c.query<{ format: ConfigFormat; value: string }>(
          'SELECT format, value FROM peak.config_versions WHERE app = $1 AND grp = $2 AND key = $3 AND version = $4',
          [ch.ref.app, ch.ref.group, ch.ref.key, ch.restore],
        );
        const old = rows[0];
        if (old === undefined) throw notFound(ch.ref, `it has no version ${ch.restore}`);
        format = old.format;
        value = old.value;
      }
      checkValue(ch.ref, format, value, schema, maxBytes);
      const version = await release(
        c,
        ch.ref,
        row,
        format,
        value,
        schema,
        actor,
        comment,
        action,
        ch.restore === undefined ? {} : { restored: ch.restore },
      );
      out.push({ ref: ch.ref, previous: first.get(label(ch.ref)) ?? null, version });
    }
    return out;
  });
}
