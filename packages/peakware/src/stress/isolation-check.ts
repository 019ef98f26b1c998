/**
 * The isolation check after a stress run: proves that no stress data reached real tables,
 * real topics or real cache keys, and names where any did. Business data belongs to the
 * application, so the scenario says what its stress data looks like: per logical table a
 * SQL condition that marks stress rows (stress buyers' ids, say), per cache a key pattern.
 * Every physical table of the layout is counted (its shadow table beside it, to show the
 * stress rows went there), every Redis key matching the pattern outside the `shadow:`
 * prefix is a leak, and every message in a real topic that carries the stress flag or this
 * run's id in its baggage is a leak.
 */
import { ErrorCodes, PeakError } from '../core/errors.js';

/** What stress data looks like, for {@link checkIsolation}. */
export interface IsolationProbes {
  /** Logical tables and the SQL condition true of their stress rows (`buyer_id >= 900000000`). */
  tables?: { table: string; where: string }[];
  /** Caches and the pattern (Redis glob) of their stress keys, without the `shadow:` prefix. */
  cacheKeys?: { cache: string; pattern: string }[];
  /** Check the control plane's real topics for this run's messages. Default true when a source is given. */
  topics?: boolean;
}

/** A database to count rows in: `ShardedDatabase` of `peakware/data` is one. */
export interface IsolationDatabase {
  physicalTables(): { dataSource: string; logical: string; table: string }[];
  primary(dataSource: string): {
    query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>;
  };
  readonly layout: { readonly shadowSuffix: string };
}

/** Redis's SCAN, as ioredis has it (a Redis, or a Redis Cluster: then each master is scanned). */
export interface IsolationRedis {
  scan(
    cursor: string,
    patternToken: 'MATCH',
    pattern: string,
    countToken: 'COUNT',
    count: number,
  ): Promise<[string, string[]]>;
  /** True for an ioredis `Cluster`, whose cache keys carry hash tags (`k:{key}`). */
  readonly isCluster?: boolean;
  /** A cluster's nodes (ioredis `Cluster.nodes`). */
  nodes?(role: 'master'): IsolationRedis[];
}

/** Where to look. */
export interface IsolationSources {
  db?: IsolationDatabase;
  redis?: IsolationRedis;
  /** Counts messages of the run in real topics (`AdminClient.stress.leakedMessages`). */
  messages?: (runId: string, sinceMs: number) => Promise<{ topic: string; messages: number }[]>;
}

/** One place stress data leaked to. */
export interface IsolationLeak {
  kind: 'table' | 'topic' | 'cache';
  /** `dataSource.physical_table (logical)`, a topic, or `cache:key`. */
  where: string;
  count: number;
  /** The keys found (cache), first 10. */
  samples?: string[];
}

/** The check's answer. */
export interface IsolationReport {
  runId: string;
  ok: boolean;
  /** Epoch ms. */
  checkedAt: number;
  leaks: IsolationLeak[];
  /** What was looked at, and the stress data found where it belongs (shadow tables, shadow keys). */
  checked: {
    tables: { where: string; realRows: number; shadowRows: number | null }[];
    topics: boolean;
    caches: { cache: string; pattern: string; realKeys: number; shadowKeys: number }[];
  };
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function scanCount(redis: IsolationRedis, match: string, samples: string[]): Promise<number> {
  if (redis.isCluster === true && redis.nodes !== undefined) {
    let n = 0;
    for (const node of redis.nodes('master')) n += await scanCount(node, match, samples);
    return n;
  }
  let cursor = '0';
  let n = 0;
  let rounds = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    n += keys.length;
    for (const k of keys) if (samples.length < 10) samples.push(k);
    if (++rounds > 100_000) break;
  } while (cursor !== '0');
  return n;
}

/** Runs the check for `runId` (its messages since `sinceMs`). */
export async function checkIsolation(
  run: { runId: string; sinceMs: number },
  probes: IsolationProbes,
  sources: IsolationSources,
): Promise<IsolationReport> {
  const report: IsolationReport = {
    runId: run.runId,
    ok: true,
    checkedAt: Date.now(),
    leaks: [],
    checked: { tables: [], topics: false, caches: [] },
  };
  for (const probe of probes.tables ?? []) {
    if (sources.db === undefined)
      throw new PeakError(
        ErrorCodes.STRESS_INVALID,
        'the isolation check has table probes but no database',
        {
          details: { input: 'db' },
        },
      );
    const physical = sources.db.physicalTables().filter((t) => t.logical === probe.table);
    if (physical.length === 0)
      throw new PeakError(
        ErrorCodes.STRESS_INVALID,
        `the isolation check names table ${probe.table}, which the layout does not have`,
        { details: { input: 'tables' } },
      );
    for (const t of physical) {
      const db = sources.db.primary(t.dataSource);
      const shadow = `${t.table}${sources.db.layout.shadowSuffix}`;
      const count = async (table: string) =>
        Number(
          (
            await db.query<{ n: string }>(
              `SELECT count(*)::text AS n FROM ${quote(table)} WHERE ${probe.where}`,
            )
          ).rows[0]?.n ?? 0,
        );
      const realRows = await count(t.table);
      const exists = (
        await db.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [shadow])
      ).rows[0]?.r;
      const shadowRows = exists === null || exists === undefined ? null : await count(shadow);
      const where = `${t.dataSource}.${t.table} (${t.logical})`;
      report.checked.tables.push({ where, realRows, shadowRows });
      if (realRows > 0) report.leaks.push({ kind: 'table', where, count: realRows });
    }
  }
  if (sources.messages !== undefined && probes.topics !== false) {
    report.checked.topics = true;
    for (const t of await sources.messages(run.runId, run.sinceMs))
      if (t.messages > 0) report.leaks.push({ kind: 'topic', where: t.topic, count: t.messages });
  }
  for (const probe of probes.cacheKeys ?? []) {
    if (sources.redis === undefined)
      throw new PeakError(
        ErrorCodes.STRESS_INVALID,
        'the isolation check has cache probes but no Redis',
        {
          details: { input: 'redis' },
        },
      );
    const base = `peak:cache:${probe.cache}:k:`;
    // On a cluster a key is stored as k:{key} (see cache/redis-tier.ts).
    const [open, close] = sources.redis.isCluster === true ? ['{', '}'] : ['', ''];
    const samples: string[] = [];
    const realKeys = await scanCount(
      sources.redis,
      `${base}${open}${probe.pattern}${close}`,
      samples,
    );
    const shadowKeys = await scanCount(
      sources.redis,
      `${base}${open}shadow:${probe.pattern}${close}`,
      [],
    );
    report.checked.caches.push({
      cache: probe.cache,
      pattern: probe.pattern,
      realKeys,
      shadowKeys,
    });
    if (realKeys > 0)
      report.leaks.push({
        kind: 'cache',
        where: `${probe.cache}:${probe.pattern}`,
        count: realKeys,
        samples: samples.map((k) => k.slice(base.length + open.length, k.length - close.length)),
      });
  }
  report.ok = report.leaks.length === 0;
  return report;
}

/** Throws PEAK_STRESS_LEAK naming every place stress data leaked to, when the check failed. */
export function assertIsolated(report: IsolationReport): void {
  if (report.ok) return;
  throw new PeakError(
    ErrorCodes.STRESS_LEAK,
    `stress run ${report.runId} leaked into ${report.leaks
      .map((l) => `${l.kind} ${l.where} (${l.count})`)
      .join(', ')}; find the write that ignores the stress flag (shadow routing) there`,
    { details: { leaks: report.leaks } },
  );
}
