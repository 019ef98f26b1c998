/**
 * The metrics history: telemetry keeps pushed metrics per second for an hour; this rolls
 * them up per minute (kept a day) and the minutes per hour (kept 7 days) in
 * `peak.console_metrics`, so charts reach back a week. Rollups are upserts of complete
 * buckets (a minute is rolled 10 s after it ends, when its pushes have arrived), so a node
 * that rolls again, or two nodes at once, change nothing; one transaction-scoped advisory
 * lock keeps two nodes from doing the same work. Queries pick the finest tier kept that far
 * back, and answer dense series (a bucket without data is 0 calls and no latency).
 *
 * A bucket keeps its RT histogram (every instance and second added), so a rolled-up p99 is
 * the p99 of the bucket's calls: histograms add where percentiles do not. Parts pushed
 * without a histogram (an older SDK) fall back to the highest p99 among them.
 */
import type pg from 'pg';
import { sparseQuantile } from '../../core/latency-histogram.js';
import type { Logger } from '../../core/logger.js';
import {
  decodeHistogram,
  encodeHistogram,
  HISTOGRAM_CONCAT_SQL,
} from '../../core/pg-histograms.js';
import type {
  MetricsGrouping,
  MetricsHistory,
  MetricsHistoryQuery,
  MetricsSeries,
} from '../console-views.js';
import { METRICS_TIERS, tierFor } from '../metrics-tiers.js';
import type { MetricBucketRow, MetricBucketSource } from './metric-bucket-source.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;
/** A minute is rolled up this long after it ends. */
const LAG_MS = 10_000;
/** Seconds still arriving: a per-second query stops this far before now. */
const ARRIVING_MS = 2_000;
/** Most buckets in one answer. */
const MAX_POINTS = 4_000;
/** Most series in one answer. */
export const MAX_SERIES = 1_000;
// pg_advisory_xact_lock key: 'peakcmet' as 8 bytes.
const ROLLUP_LOCK_KEY = '8098986618753213812';

/** What one rollup pass did. */
export interface RollupResult {
  minutes: number;
  hours: number;
  pruned: number;
}

const floorTo = (t: number, step: number) => Math.floor(t / step) * step;

/** Rolls pushed metrics up and answers history queries. */
export class MetricsHistoryStore {
  readonly #pool: pg.Pool;
  readonly #source: MetricBucketSource;
  readonly #logger: Logger;

  constructor(pool: pg.Pool, source: MetricBucketSource, logger: Logger) {
    this.#pool = pool;
    this.#source = source;
    this.#logger = logger;
  }

  /**
   * Rolls every complete minute not yet rolled (at most the last hour, what telemetry
   * keeps) and every complete hour of those minutes, then drops what is past each tier.
   */
  async rollUp(nowMs: number): Promise<RollupResult> {
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const lock = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_xact_lock($1) AS ok',
        [ROLLUP_LOCK_KEY],
      );
      if (lock.rows[0]?.ok !== true) {
        await client.query('ROLLBACK');
        return { minutes: 0, hours: 0, pruned: 0 };
      }
      const last = await client.query<{ minute: number | null; hour: number | null }>(
        `SELECT (SELECT extract(epoch FROM max(bucket)) * 1000 FROM peak.console_metrics
                  WHERE step_seconds = 60)::float8 AS minute,
                (SELECT extract(epoch FROM max(bucket)) * 1000 FROM peak.console_metrics
                  WHERE step_seconds = 3600)::float8 AS hour`,
      );
      const minuteTo = floorTo(nowMs - LAG_MS, MINUTE);
      const lastMinute = last.rows[0]?.minute ?? null;
      const minuteFrom = Math.max(
        lastMinute === null ? 0 : lastMinute + MINUTE,
        floorTo(nowMs - METRICS_TIERS[0]!.keepMs, MINUTE),
      );
      let minutes = 0;
      if (minuteFrom < minuteTo) {
        const rows = await this.#source.buckets({
          fromMs: minuteFrom,
          toMs: minuteTo,
          bucketSeconds: 60,
          by: 'resource',
        });
        minutes = await upsert(client, 60, rows);
      }
      const lastHour = last.rows[0]?.hour ?? null;
      const hourTo = floorTo(minuteTo, HOUR);
      const hourFrom = lastHour === null ? hourTo - METRICS_TIERS[1]!.keepMs : lastHour + HOUR;
      let hours = 0;
      if (hourFrom < hourTo) {
        // An hour keeps its minutes' merged histogram (concatenated here, added and written
        // back compact by the upsert), which reads take the p99 from.
        const res = await client.query(
          `SELECT (extract(epoch FROM date_trunc('hour', bucket)) * 1000)::float8 AS t,
                  service, resource, sum(pass)::float8 AS pass, sum(block)::float8 AS block,
                  sum(success)::float8 AS success, sum(error)::float8 AS error,
                  sum(rt_sum)::float8 AS rt_sum, max(rt_p99)::float8 AS p99,
                  max(instances)::int AS instances, ${HISTOGRAM_CONCAT_SQL} AS rt_hist
             FROM peak.console_metrics
            WHERE step_seconds = 60 AND bucket >= to_timestamp($1 / 1000.0)
              AND bucket < to_timestamp($2 / 1000.0)
            GROUP BY 1, service, resource`,
          [hourFrom, hourTo],
        );
        hours = await upsert(client, 3600, res.rows.map(bucketRow));
      }
      const pruned = await client.query(
        `DELETE FROM peak.console_metrics
          WHERE (step_seconds = 60 AND bucket < to_timestamp($1 / 1000.0))
             OR (step_seconds = 3600 AND bucket < to_timestamp($2 / 1000.0))`,
        [nowMs - METRICS_TIERS[1]!.keepMs - HOUR, nowMs - METRICS_TIERS[2]!.keepMs],
      );
      await client.query('COMMIT');
      if (minutes + hours > 0) this.#logger.debug({ minutes, hours }, 'console: metrics rolled up');
      return { minutes, hours, pruned: pruned.rowCount ?? 0 };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** A history query, answered from the finest tier kept back to its start. */
  async query(q: MetricsHistoryQuery, nowMs: number): Promise<MetricsHistory> {
    const to = Math.min(q.to ?? nowMs - ARRIVING_MS, nowMs - ARRIVING_MS);
    const from = q.from ?? to - 5 * MINUTE;
    const step = q.step ?? tierFor(from, nowMs).stepSeconds;
    const stepMs = step * 1000;
    // Whole buckets only, and never more than MAX_POINTS of them (the start moves up).
    const end = floorTo(to, stepMs) + (step === 1 ? 1000 : 0);
    const start = Math.max(floorTo(from, stepMs), end - MAX_POINTS * stepMs);
    const by: MetricsGrouping = q.by ?? 'total';
    const filter = {
      ...(q.service === undefined ? {} : { service: q.service }),
      ...(q.resource === undefined ? {} : { resource: q.resource }),
    };
    const rows =
      start >= end
        ? []
        : step === 1
          ? await this.#source.buckets({
              fromMs: start,
              toMs: end,
              bucketSeconds: 1,
              by,
              ...filter,
            })
          : await this.#rolled(step, start, end, by, filter);
    return { stepSeconds: step, fromMs: start, toMs: end, series: densify(rows, start, end, step) };
  }

  async #rolled(
    step: number,
    fromMs: number,
    toMs: number,
    by: MetricsGrouping,
    filter: { service?: string; resource?: string },
  ): Promise<MetricBucketRow[]> {
    // A service's total is its inbound node when it reports one (see telemetry's reader).
    const { rows } = await this.#pool.query(
      `WITH w AS (
         SELECT * FROM peak.console_metrics
          WHERE step_seconds = $1 AND bucket >= to_timestamp($2 / 1000.0)
            AND bucket < to_timestamp($3 / 1000.0)
            AND ($5::text IS NULL OR service = $5) AND ($6::text IS NULL OR resource = $6)),
       inbound AS (SELECT DISTINCT service FROM w WHERE resource = '__inbound__'),
       g AS (
         SELECT (extract(epoch FROM bucket) * 1000)::float8 AS t,
                CASE WHEN $4 = 'total' THEN '' ELSE service END AS gs,
                CASE WHEN $4 = 'resource' THEN resource ELSE '' END AS gr,
                pass, block, success, error, rt_sum, rt_p99, instances, rt_hist
           FROM w
          WHERE $4 = 'resource' OR resource = '__inbound__'
             OR service NOT IN (SELECT service FROM inbound)),
       sums AS (
         SELECT t, gs, gr, sum(pass)::float8 AS pass, sum(block)::float8 AS block,
                sum(success)::float8 AS success, sum(error)::float8 AS error,
                sum(rt_sum)::float8 AS rt_sum, max(rt_p99)::float8 AS p99,
                max(instances)::int AS instances, ${HISTOGRAM_CONCAT_SQL} AS rt_hist
           FROM g GROUP BY t, gs, gr)
       SELECT t, gs AS service, gr AS resource, pass, block, success, error, rt_sum, p99,
              instances, rt_hist
         FROM sums ORDER BY 1, 2, 3`,
      [step, fromMs, toMs, by, filter.service ?? null, filter.resource ?? null],
    );
    return rows.map(bucketRow);
  }
}

/** A rolled-up row (its merged histogram as concatenated `rt_hist` bytes) as a bucket. */
function bucketRow(r: {
  t: number;
  service: string;
  resource: string;
  pass: number;
  block: number;
  success: number;
  error: number;
  rt_sum: number;
  p99: number | null;
  instances: number;
  rt_hist: Buffer | null;
}): MetricBucketRow {
  const rtHist = decodeHistogram(r.rt_hist);
  return {
    t: r.t,
    service: r.service,
    resource: r.resource,
    pass: r.pass,
    block: r.block,
    success: r.success,
    error: r.error,
    rtSum: r.rt_sum,
    p99: rtHist === undefined ? r.p99 : sparseQuantile(rtHist, 0.99),
    instances: r.instances,
    ...(rtHist === undefined ? {} : { rtHist }),
  };
}

async function upsert(
  client: pg.PoolClient,
  step: number,
  rows: readonly MetricBucketRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const col = <T>(pick: (r: MetricBucketRow) => T) => rows.map(pick);
  const res = await client.query(
    `INSERT INTO peak.console_metrics
       (step_seconds, bucket, service, resource, pass, block, success, error, rt_sum, rt_p99,
        instances, rt_hist)
     SELECT $1, to_timestamp(t / 1000.0), s, r, p, b, ok, e, rs, p99, i, h
       FROM unnest($2::float8[], $3::text[], $4::text[], $5::float8[], $6::float8[],
                   $7::float8[], $8::float8[], $9::float8[], $10::float8[], $11::int[],
                   $12::bytea[])
         AS x(t, s, r, p, b, ok, e, rs, p99, i, h)
     ON CONFLICT (step_seconds, service, resource, bucket) DO UPDATE SET
       pass = excluded.pass, block = excluded.block, success = excluded.success,
       error = excluded.error, rt_sum = excluded.rt_sum, rt_p99 = excluded.rt_p99,
       instances = excluded.instances, rt_hist = excluded.rt_hist`,
    [
      step,
      col((r) => r.t),
      col((r) => r.service),
      col((r) => r.resource),
      col((r) => r.pass),
      col((r) => r.block),
      col((r) => r.success),
      col((r) => r.error),
      col((r) => r.rtSum),
      col((r) => r.p99),
      col((r) => r.instances),
      col((r) => encodeHistogram(r.rtHist)),
    ],
  );
  return res.rowCount ?? 0;
}

/** Rows to one dense series per (service, resource): every bucket of [start, end). */
export function densify(
  rows: readonly MetricBucketRow[],
  start: number,
  end: number,
  step: number,
): MetricsSeries[] {
  const stepMs = step * 1000;
  const n = Math.max(0, Math.ceil((end - start) / stepMs));
  const byKey = new Map<string, MetricsSeries>();
  for (const r of rows) {
    const key = `${r.service}\u0000${r.resource}`;
    let s = byKey.get(key);
    if (s === undefined) {
      if (byKey.size >= MAX_SERIES) continue;
      s = {
        service: r.service,
        resource: r.resource,
        t: Array.from({ length: n }, (_, i) => start + i * stepMs),
        calls: new Array<number>(n).fill(0),
        errors: new Array<number>(n).fill(0),
        blocked: new Array<number>(n).fill(0),
        rtAvgMs: new Array<number | null>(n).fill(null),
        p99Ms: new Array<number | null>(n).fill(null),
        instances: new Array<number>(n).fill(0),
      };
      byKey.set(key, s);
    }
    const i = Math.round((r.t - start) / stepMs);
    if (i < 0 || i >= n) continue;
    const calls = r.success + r.error;
    s.calls[i] = calls / step;
    s.errors[i] = r.error / step;
    s.blocked[i] = r.block / step;
    s.rtAvgMs[i] = calls > 0 ? r.rtSum / calls : null;
    s.p99Ms[i] = r.p99;
    s.instances[i] = r.instances;
  }
  return [...byKey.values()];
}
