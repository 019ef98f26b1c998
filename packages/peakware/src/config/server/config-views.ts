/**
 * The config center's shapes: item references, the views routes return, the rows they are
 * read from, input checks (names, values against their schema) and the NOTIFY payload.
 */
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { Actor, ItemRef } from '../config-item-ref.js';
import { type ConfigSchema, type SchemaProblem, validateValue } from '../config-schema.js';

export type { Actor, ItemRef };

/** The NOTIFY channel config changes are announced on (payload: `app/group/key`). */
export const CONFIG_CHANNEL = 'peak_config';
/** Largest value accepted, bytes (UTF-8). */
export const DEFAULT_MAX_VALUE_BYTES = 256 * 1024;

/** How a value is stored and delivered. */
export type ConfigFormat = 'json' | 'text';

/** Largest NOTIFY payload carrying the state itself (PostgreSQL's limit is 8000 bytes). */
export const MAX_STATE_PAYLOAD = 7000;

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
export function notifyPayload(
  r: ItemRef,
  version: number,
  format: ConfigFormat,
  value: string,
): string {
  const state: NotifiedState = { ...r, version, format, value };
  const json = JSON.stringify(state);
  return Buffer.byteLength(json, 'utf8') <= MAX_STATE_PAYLOAD ? json : label(r);
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

export function label(r: ItemRef): string {
  return `${r.app}/${r.group}/${r.key}`;
}

export function invalid(r: ItemRef, problems: SchemaProblem[], what: string): PeakError {
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

export interface ItemRow {
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

export interface GrayRow {
  base_version: number;
  format: ConfigFormat;
  value: string;
  tags: string[];
  instance_ids: string[];
  author: string;
  comment: string;
  created_at: Date;
}

export function itemView(r: ItemRow): ItemView {
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

export function grayView(r: GrayRow): GrayView {
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

export function notFound(r: ItemRef, hint = "publish it first with 'peak config set'"): PeakError {
  return new PeakError(
    ErrorCodes.CONFIG_NOT_FOUND,
    `config item ${label(r)} does not exist; ${hint}`,
    {
      details: { app: r.app, group: r.group, key: r.key },
    },
  );
}
