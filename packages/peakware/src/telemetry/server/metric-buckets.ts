/**
 * The pushed per-second metrics (`peak.telemetry_metrics`) summed over instances into
 * buckets of N seconds: per second for live charts, per minute for the console's metrics
 * history. Telemetry owns the table; the console reads it only through this reader, which
 * the host hands it (`src/server/modules.ts`).
 *
 * A service's total (grouped `total` or `service`) is its guard's inbound node
 * (`__inbound__`, every call the process took) when it reports one, else the sum of its
 * resources: summing both would count each call twice.
 */
import type pg from 'pg';
import { sparseQuantile } from '../../core/latency-histogram.js';
import { decodeHistogram, HISTOGRAM_CONCAT_SQL } from '../../core/pg-histograms.js';

/** The guard's inbound node, every call a process took (guard's `INBOUND_RESOURCE`). */
const INBOUND = '__inbound__';

/** How buckets are grouped: everything together, per service, or per service and resource. */
export type MetricBucketGrouping = 'total' | 'service' | 'resource';

/** What to sum. */
export interface MetricBucketQuery {
  /** First second, epoch ms (inclusive). */
  fromMs: number;
  /** End, epoch ms (exclusive). */
  toMs: number;
  /** Bucket width in seconds (1 for per second). */
  bucketSeconds: number;
  by: MetricBucketGrouping;
  service?: string;
  resource?: string;
  /** Only these instances (a release's comparison of its versions); absent: all. */
  instances?: readonly string[];
}

/** One bucket's sums over every instance and second in it. */
export interface MetricBucket {
  /** Start of the bucket, epoch ms. */
  t: number;
  /** The service (empty when grouped `total`). */
  service: string;
  /** The resource (empty unless grouped `resource`). */
  resource: string;
  /** Admitted, blocked, succeeded and failed calls in the bucket. */
  pass: number;
  block: number;
  success: number;
  error: number;
  /** Sum of each second's mean RT × its calls, ms (divide by calls for the mean). */
  rtSum: number;
  /**
   * RT p50 / p99 of the bucket, ms: percentiles of every call in it (the instances' pushed
   * histograms added, see {@link rtHist}); where none pushed one, the highest p50 / p99 an
   * instance reported. Null when neither.
   */
  p50: number | null;
  p99: number | null;
  /**
   * The bucket's RT histogram, every instance and second added (core's sparse
   * `[index, count, …]` pairs); absent when no instance pushed one. Add these over buckets
   * (`mergeSparseHistograms`) for the percentiles of a longer span.
   */
  rtHist?: number[];
  /** Instances that reported in the bucket. */
  instances: number;
}

/** Reads per-second metrics in buckets. */
export interface MetricBucketReader {
  buckets(q: MetricBucketQuery): Promise<MetricBucket[]>;
}

/** The reader on the control plane's pool. */
export function openMetricBuckets(pool: pg.Pool): MetricBucketReader {
  return {
    async buckets(q) {
      const { rows } = await pool.query(
        `WITH w AS (
           SELECT * FROM peak.telemetry_metrics
            WHERE second >= to_timestamp($1 / 1000.0) AND second < to_timestamp($2 / 1000.0)
              AND ($5::text IS NULL OR service = $5) AND ($6::text IS NULL OR resource = $6)
              AND ($7::text[] IS NULL OR instance = ANY($7::text[]))),
         inbound AS (SELECT DISTINCT service FROM w WHERE resource = '${INBOUND}'),
         g AS (
           SELECT (floor(extract(epoch FROM second) / $3) * $3 * 1000)::float8 AS t,
                  CASE WHEN $4 = 'total' THEN '' ELSE service END AS gs,
                  CASE WHEN $4 = 'resource' THEN resource ELSE '' END AS gr,
                  instance, pass, block, success, error, rt_avg, rt_p50, rt_p99, rt_hist
             FROM w
            WHERE $4 = 'resource' OR resource = '${INBOUND}'
               OR service NOT IN (SELECT service FROM inbound)),
         sums AS (
           SELECT t, gs, gr, sum(pass)::float8 AS pass, sum(block)::float8 AS block,
                  sum(success)::float8 AS success, sum(error)::float8 AS error,
                  sum(rt_avg * (success + error))::float8 AS rt_sum,
                  max(rt_p50)::float8 AS p50, max(rt_p99)::float8 AS p99,
                  count(DISTINCT instance)::int AS instances, ${HISTOGRAM_CONCAT_SQL} AS rt_hist
             FROM g GROUP BY t, gs, gr)
         SELECT t, gs AS service, gr AS resource, pass, block, success, error, rt_sum, p50, p99,
                instances, rt_hist
           FROM sums ORDER BY 1, 2, 3`,
        [
          q.fromMs,
          q.toMs,
          q.bucketSeconds,
          q.by,
          q.service ?? null,
          q.resource ?? null,
          q.instances ?? null,
        ],
      );
      return rows.map((r) => {
        const rtHist = decodeHistogram(r.rt_hist);
        return {
          t: r.t as number,
          service: r.service as string,
          resource: r.resource as string,
          pass: r.pass as number,
          block: r.block as number,
          success: r.success as number,
          error: r.error as number,
          rtSum: r.rt_sum as number,
          p50: rtHist === undefined ? (r.p50 as number | null) : sparseQuantile(rtHist, 0.5),
          p99: rtHist === undefined ? (r.p99 as number | null) : sparseQuantile(rtHist, 0.99),
          instances: r.instances as number,
          ...(rtHist === undefined ? {} : { rtHist }),
        };
      });
    },
  };
}
