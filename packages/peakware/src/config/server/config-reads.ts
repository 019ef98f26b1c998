/** The config center's reads: items with their gray releases, apps, history, versions, audit. */
import type pg from 'pg';
import {
  type AuditView,
  type ConfigFormat,
  type GrayRow,
  type GrayView,
  grayView,
  type ItemRef,
  type ItemRow,
  type ItemView,
  itemView,
  notFound,
  type VersionView,
} from './config-views.js';

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
