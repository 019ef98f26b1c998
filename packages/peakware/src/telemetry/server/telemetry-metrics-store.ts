/**
 * The per-second service metrics SDKs push (`peak.telemetry_metrics`, one row per service,
 * resource, instance and second or window bucket): batch insert, the live view `peak top`
 * reads (rates summed over instances for the last N seconds), and a bounded retention
 * delete.
 */
import type pg from 'pg';
import { mergeSparseHistograms, sparseQuantile } from '../../core/latency-histogram.js';
import {
  histogramArrayLiterals,
  histogramFromArrays,
  mergedHistogramsSql,
} from '../../core/pg-histograms.js';
import type { PushedMetric } from '../metrics-pusher.js';

/** One resource's live figures, summed over the service's instances. */
export interface LiveResource {
  service: string;
  resource: string;
  instances: number;
  /** Completed calls per second. */
  qps: number;
  /** Admitted calls per second. */
  passQps: number;
  /** Blocked (refused by guard rules) per second. */
  blockQps: number;
  /** Failed calls per second. */
  errorQps: number;
  /** Mean RT over the period, ms (weighted by calls). */
  rtAvgMs: number;
  /**
   * RT p50 / p99 over the period, ms: percentiles of every call of every instance (their
   * pushed histograms added); where no instance pushed histograms, the highest instance's
   * latest reported p50 / p99. Absent when neither was reported.
   */
  rtP50Ms?: number;
  rtP99Ms?: number;
  /**
   * The highest RT p99 of any one instance over the period, ms (each instance's histograms
   * added; without histograms, the highest latest reported p99): what the busiest instance
   * sees, for a capacity probe that loads one instance more than the others.
   */
  rtP99HighestInstanceMs?: number;
  /** Calls in flight: the sum of each instance's latest report. */
  concurrency: number;
  /** The newest record, epoch ms. */
  lastSecond: number;
}

/** Store of pushed per-second metrics. */
export class TelemetryMetricsStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Inserts one instance's batch; a record already stored for that key is replaced. */
  async insert(
    service: string,
    instance: string,
    metrics: readonly PushedMetric[],
  ): Promise<number> {
    if (metrics.length === 0) return 0;
    const col = <T>(pick: (m: PushedMetric) => T) => metrics.map(pick);
    const hists = metrics.map((m) => histogramArrayLiterals(m.rtHist));
    const res = await this.#pool.query(
      `INSERT INTO peak.telemetry_metrics
         (service, instance, resource, second, pass, block, success, error, rt_avg, rt_p50,
          rt_p99, concurrency, rt_hist_i, rt_hist_c)
       SELECT $1, $2, r, to_timestamp(s / 1000.0), p, b, ok, e, avg, p50, p99, c,
              hi::smallint[], hc::integer[]
         FROM unnest($3::text[], $4::float8[], $5::int[], $6::int[], $7::int[], $8::int[],
                     $9::float8[], $10::float8[], $11::float8[], $12::int[], $13::text[],
                     $14::text[])
           AS t(r, s, p, b, ok, e, avg, p50, p99, c, hi, hc)
       ON CONFLICT (service, resource, instance, second) DO UPDATE SET
         pass = excluded.pass, block = excluded.block, success = excluded.success,
         error = excluded.error, rt_avg = excluded.rt_avg, rt_p50 = excluded.rt_p50,
         rt_p99 = excluded.rt_p99, concurrency = excluded.concurrency,
         rt_hist_i = excluded.rt_hist_i, rt_hist_c = excluded.rt_hist_c`,
      [
        service,
        instance,
        col((m) => m.resource),
        col((m) => m.second),
        col((m) => Math.round(m.pass)),
        col((m) => Math.round(m.block)),
        col((m) => Math.round(m.success)),
        col((m) => Math.round(m.error)),
        col((m) => m.rtAvg),
        col((m) => m.rtP50 ?? null),
        col((m) => m.rtP99 ?? null),
        col((m) => Math.round(m.concurrency)),
        hists.map((h) => h[0]),
        hists.map((h) => h[1]),
      ],
    );
    return res.rowCount ?? 0;
  }

  /**
   * Figures per service and resource over the `seconds` before `untilMs` (callers leave a
   * second or two for pushes still on their way), busiest first.
   */
  async live(seconds: number, untilMs: number, service?: string): Promise<LiveResource[]> {
    // Each instance's histograms are added in SQL (one pass over the pairs); the resource's
    // own is the sum of its instances', added here.
    const res = await this.#pool.query(
      `WITH w AS (
         SELECT * FROM peak.telemetry_metrics
          WHERE second >= to_timestamp($1 / 1000.0) AND second < to_timestamp($2 / 1000.0)
            AND ($3::text IS NULL OR service = $3)),
       sums AS (
         SELECT service, resource, count(DISTINCT instance)::int AS instances,
                sum(pass)::float8 AS pass, sum(block)::float8 AS block,
                sum(success)::float8 AS success, sum(error)::float8 AS error,
                (sum(rt_avg * (success + error)) / nullif(sum(success + error), 0))::float8 AS rt_avg,
                (extract(epoch FROM max(second)) * 1000)::float8 AS last_second
           FROM w GROUP BY service, resource),
       latest AS (
         SELECT DISTINCT ON (service, resource, instance) service, resource, instance,
                concurrency, rt_p50, rt_p99
           FROM w ORDER BY service, resource, instance, second DESC),
       latest_sums AS (
         SELECT service, resource, max(rt_p50) AS p50, max(rt_p99) AS p99,
                sum(concurrency)::int AS concurrency
           FROM latest GROUP BY service, resource),
       per_instance AS (${mergedHistogramsSql('w', ['service', 'resource', 'instance'])}),
       hists AS (
         SELECT service, resource, json_agg(json_build_array(rt_hist_i, rt_hist_c)) AS per_instance
           FROM per_instance GROUP BY service, resource)
       SELECT s.*, l.p50, l.p99, l.concurrency, h.per_instance
         FROM sums s
         LEFT JOIN latest_sums l ON l.service = s.service AND l.resource = s.resource
         LEFT JOIN hists h ON h.service = s.service AND h.resource = s.resource`,
      [untilMs - seconds * 1000, untilMs, service ?? null],
    );
    return res.rows
      .map((r) => {
        const perInstance = ((r.per_instance ?? []) as [number[], number[]][]).map(
          ([i, c]) => histogramFromArrays(i, c) ?? [],
        );
        const hist = perInstance.length === 0 ? undefined : mergeSparseHistograms(perInstance);
        const p50 = hist === undefined ? r.p50 : sparseQuantile(hist, 0.5);
        const p99 = hist === undefined ? r.p99 : sparseQuantile(hist, 0.99);
        const highest =
          perInstance.length === 0
            ? r.p99
            : Math.max(...perInstance.map((h) => sparseQuantile(h, 0.99)));
        return {
          service: r.service as string,
          resource: r.resource as string,
          instances: r.instances as number,
          qps: (r.success + r.error) / seconds,
          passQps: r.pass / seconds,
          blockQps: r.block / seconds,
          errorQps: r.error / seconds,
          rtAvgMs: r.rt_avg ?? 0,
          ...(p50 === null ? {} : { rtP50Ms: Number(p50) }),
          ...(p99 === null ? {} : { rtP99Ms: Number(p99) }),
          ...(highest === null ? {} : { rtP99HighestInstanceMs: Number(highest) }),
          concurrency: r.concurrency ?? 0,
          lastSecond: r.last_second as number,
        };
      })
      .sort((a, b) => b.qps + b.blockQps - (a.qps + a.blockQps));
  }

  /** Deletes up to `batch` records older than `beforeMs`; returns how many. */
  async prune(beforeMs: number, batch = 10000): Promise<number> {
    const res = await this.#pool.query(
      `DELETE FROM peak.telemetry_metrics WHERE ctid IN (
         SELECT ctid FROM peak.telemetry_metrics WHERE second < to_timestamp($1 / 1000.0) LIMIT $2)`,
      [beforeMs, batch],
    );
    return res.rowCount ?? 0;
  }
}
