/**
 * What a crash left in doubt, read without settling anything (`peak data xa ls`): every
 * prepared transaction of ours on each data source, its age, and what its coordinator's
 * log says. Reading the log decides nothing; `recoverXa` (`peak data xa recover`) does.
 */
import { errorMessage } from '../core/errors.js';
import type { DataSource } from './data-source.js';
import { parsePreparedName } from './xa-commit.js';

/**
 * What the coordinator's log says of a global transaction: `commit` (recovery commits
 * it), `abort` (recovery rolls it back), `undecided` (no row: the coordinator rolled back
 * or is still open; recovery decides abort unless it commits meanwhile), `unreadable`
 * (the coordinator is not in the layout or did not answer).
 */
export type XaDecision = 'commit' | 'abort' | 'undecided' | 'unreadable';

/** One prepared transaction in doubt. */
export interface XaInDoubt {
  /** The prepared transaction's name in PostgreSQL. */
  prepared: string;
  gid: string;
  /** The participant holding it prepared. */
  dataSource: string;
  coordinator: string;
  /** When it was prepared (ISO), and how long ago, ms. */
  preparedAt: string;
  ageMs: number;
  decision: XaDecision;
  /** Why the decision is unreadable. */
  error?: string;
}

/** Every prepared transaction of ours on `dataSources`, oldest first. */
export async function listInDoubt(
  host: { primary(dataSource: string): DataSource },
  dataSources: readonly string[],
): Promise<XaInDoubt[]> {
  const out: XaInDoubt[] = [];
  const decisions = new Map<string, Promise<{ decision: XaDecision; error?: string }>>();
  for (const dataSource of dataSources) {
    const { rows } = await host.primary(dataSource).query<{
      gid: string;
      prepared: Date;
      age_ms: number;
    }>(
      `SELECT gid, prepared, (extract(epoch FROM now() - prepared) * 1000)::float8 AS age_ms
         FROM pg_prepared_xacts
        WHERE gid LIKE 'peak\\_xa:%' AND database = current_database() ORDER BY prepared`,
    );
    for (const r of rows) {
      const parsed = parsePreparedName(r.gid);
      if (parsed === undefined) continue;
      let decision = decisions.get(parsed.gid);
      if (decision === undefined) {
        decision = readDecision(host, dataSources, parsed.coordinator, parsed.gid);
        decisions.set(parsed.gid, decision);
      }
      out.push({
        prepared: r.gid,
        gid: parsed.gid,
        dataSource,
        coordinator: parsed.coordinator,
        preparedAt: r.prepared.toISOString(),
        ageMs: Math.max(0, Math.round(r.age_ms)),
        ...(await decision),
      });
    }
  }
  return out.sort((a, b) => b.ageMs - a.ageMs);
}

async function readDecision(
  host: { primary(dataSource: string): DataSource },
  dataSources: readonly string[],
  coordinator: string,
  gid: string,
): Promise<{ decision: XaDecision; error?: string }> {
  if (!dataSources.includes(coordinator)) {
    return {
      decision: 'unreadable',
      error: `its coordinator ${coordinator} is not a data source of this layout`,
    };
  }
  try {
    const { rows } = await host
      .primary(coordinator)
      .query<{ outcome: 'commit' | 'abort' }>(`SELECT outcome FROM peak_xa.log WHERE gid = $1`, [
        gid,
      ]);
    return { decision: rows[0]?.outcome ?? 'undecided' };
  } catch (err) {
    // No log table yet means nothing was ever decided there.
    if ((err as { code?: unknown }).code === '42P01') return { decision: 'undecided' };
    return { decision: 'unreadable', error: errorMessage(err) };
  }
}
