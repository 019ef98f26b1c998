/**
 * Shadow tables for stress traffic: `<physical table><suffix>` beside every physical table
 * that exists, created from it (`CREATE TABLE IF NOT EXISTS … (LIKE … INCLUDING ALL)`),
 * never by hand.
 */
import type { DataSource } from './data-source.js';

/** A shadow table made or found by {@link createShadowTables}. */
export interface ShadowTable {
  dataSource: string;
  table: string;
  shadow: string;
  /** False when it was already there. */
  created: boolean;
}

/** A PostgreSQL identifier, double-quoted (embedded quotes doubled). */
function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Creates the shadow table of every physical table that exists; returns the ones created or present. */
export async function createShadowTables(
  tables: readonly { dataSource: string; table: string }[],
  primaryOf: (dataSource: string) => DataSource,
  suffix: string,
): Promise<ShadowTable[]> {
  const out: ShadowTable[] = [];
  for (const t of tables) {
    const primary = primaryOf(t.dataSource);
    const shadow = `${t.table}${suffix}`;
    const { rows } = await primary.query<{ real: string | null; shadow: string | null }>(
      'SELECT to_regclass($1)::text AS real, to_regclass($2)::text AS shadow',
      [t.table, shadow],
    );
    if (rows[0]?.real === null || rows[0]?.real === undefined) continue;
    if (rows[0].shadow === null) {
      await primary.query(
        `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(shadow)} (LIKE ${quoteIdentifier(t.table)} INCLUDING ALL)`,
      );
    }
    out.push({
      dataSource: t.dataSource,
      table: t.table,
      shadow,
      created: rows[0].shadow === null,
    });
  }
  return out;
}
