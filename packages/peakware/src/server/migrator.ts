/**
 * Versioned migrations of schema `peak`: each applied in its own transaction with its
 * version recorded, all under one advisory lock so control-plane nodes starting together
 * apply each migration exactly once. Running them again applies nothing. A database whose
 * schema is newer than this build knows is refused, never silently used.
 */
import type pg from 'pg';
import { ErrorCodes, errorMessage, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';

/** One schema change. */
export interface Migration {
  /**
   * Strictly increasing, never reused. Numbers are assigned ahead to parallel branches, so
   * the list may have gaps while one is not merged yet; a version missing from the
   * database is applied whenever it appears, even below the newest one applied.
   */
  version: number;
  /** A short kebab-case name, recorded with the version. */
  name: string;
  /** The SQL, run in one transaction; may hold several statements. */
  sql: string;
}

/** What {@link migrate} did. */
export interface MigrationResult {
  /** Versions applied by this call (empty when already up to date). */
  applied: number[];
  /** The schema version now in force. */
  version: number;
}

// pg_advisory_lock key: a fixed 64-bit number meaning "peak schema migrations".
const LOCK_KEY = '7354696301';

/** The schema version recorded in the database, 0 when none. */
export async function schemaVersion(db: pg.Pool | pg.PoolClient): Promise<number> {
  const exists = await db.query<{ ok: boolean }>(
    "SELECT to_regclass('peak.schema_migrations') IS NOT NULL AS ok",
  );
  if (exists.rows[0]?.ok !== true) return 0;
  const { rows } = await db.query<{ v: number | null }>(
    'SELECT max(version)::int AS v FROM peak.schema_migrations',
  );
  return rows[0]?.v ?? 0;
}

function checkList(list: readonly Migration[]): void {
  // Versions are assigned ahead (one per subsystem in flight), so the list may have gaps
  // until every subsystem has landed; it must only increase.
  list.forEach((m, i) => {
    const prev = i === 0 ? 0 : list[i - 1]!.version;
    if (!Number.isInteger(m.version) || m.version <= prev) {
      throw new PeakError(
        ErrorCodes.MIGRATION_FAILED,
        `migration list is broken: entry ${i} has version ${m.version}, expected a version above ${prev}`,
      );
    }
  });
}

/** Brings schema `peak` up to the newest migration in `list`. */
export async function migrate(
  pool: pg.Pool,
  list: readonly Migration[],
  logger: Logger,
): Promise<MigrationResult> {
  checkList(list);
  const latest = list.at(-1)?.version ?? 0;
  const client = await pool.connect();
  try {
    // A session lock held across the per-migration transactions.
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    await client.query('CREATE SCHEMA IF NOT EXISTS peak');
    await client.query(`
      CREATE TABLE IF NOT EXISTS peak.schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const current = await schemaVersion(client);
    if (current > latest) {
      throw new PeakError(
        ErrorCodes.SCHEMA_TOO_NEW,
        `schema peak is at version ${current}, but this peakware (knowing versions up to ${latest}) is older; upgrade peakware, or point --postgres at another database`,
        { details: { databaseVersion: current, knownVersion: latest } },
      );
    }
    const done = new Set(
      (
        await client.query<{ version: number }>('SELECT version FROM peak.schema_migrations')
      ).rows.map((r) => r.version),
    );
    const applied: number[] = [];
    // Every migration not recorded yet, in version order: one whose number was assigned
    // below a newer one already applied (a gap filled later) runs too.
    for (const m of list.filter((x) => !done.has(x.version))) {
      try {
        await client.query('BEGIN');
        await client.query(m.sql);
        await client.query('INSERT INTO peak.schema_migrations (version, name) VALUES ($1, $2)', [
          m.version,
          m.name,
        ]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new PeakError(
          ErrorCodes.MIGRATION_FAILED,
          `migration ${m.version} (${m.name}) failed and was rolled back: ${errorMessage(err)}`,
          { cause: err },
        );
      }
      applied.push(m.version);
      logger.info({ version: m.version, name: m.name }, 'applied migration');
    }
    return { applied, version: Math.max(current, latest) };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]).catch(() => undefined);
    client.release();
  }
}
