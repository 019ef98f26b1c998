/**
 * The per-second service metrics SDKs push (`peak.telemetry_metrics`, one row per service,
 * resource, instance and second or window bucket): batch insert, the live view `peak top`
 * reads (rates summed over instances for the last N seconds), and a bounded retention
 * delete.
 */
import type pg from 'pg';
import {
  addSparseHistogram,
  HISTOGRAM_BUCKETS,
  histogramQuantile,
  sparseQuantile,
} from '../../core/latency-histogram.js';
import {
  decodeHistogram,
  encodeHistogram,
  HISTOGRAM_CONCAT_SQL,
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
    const res = await this.#pool.query(
      `INSERT INTO peak.telemetry_metrics
         (service, instance, resource, second, pass, block, success, error, rt_avg, rt_p50,
          rt_p99, concurrency, rt_hist)
       SELECT $1, $2, r, to_timestamp(s / 1000.0), p, b, ok, e, avg, p50, p99, c, h
         FROM unnest($3::text[], $4::float8[], $5::int[], $6::int[], $7::int[], $8::int[],
                     $9::float8[], $10::float8[], $11::float8[], $12::int[], $13::bytea[])
           AS t(r, s, p, b, ok, e, avg, p50, p99, c, h)
       ON CONFLICT (service, resource, instance, second) DO UPDATE SET
         pass = excluded.pass, block = excluded.block, success = excluded.success,
         error = excluded.error, rt_avg = excluded.rt_avg, rt_p50 = excluded.rt_p50,
         rt_p99 = excluded.rt_p99, concurrency = excluded.concurrency,
         rt_hist = excluded.rt_hist`,
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
        col((m) => encodeHistogram(m.rtHist)),
      ],
    );
    return res.rowCount ?? 0;
  }

  /**
   * Figures per service and resource over the `seconds` before `untilMs` (callers leave a
   * second or two for pushes still on their way), busiest first.
   */
  async live(seconds: number, untilMs: number, service?: string): Promise<LiveResource[]> {
    // One row per instance, its histograms concatenated (core's pg-histograms); the
    // instances are added here, histograms into the resource's counters.
    const res = await this.#pool.query(
      `WITH w AS (
         SELECT * FROM peak.telemetry_metrics
          WHERE second >= to_timestamp($1 / 1000.0) AND second < to_timestamp($2 / 1000.0)
            AND ($3::text IS NULL OR service = $3)),
       latest AS (
         SELECT DISTINCT ON (service, resource, instance) service, resource, instance,
                concurrency, rt_p50, rt_p99
           FROM w ORDER BY service, resource, instance, second DESC)
       SELECT g.*, l.concurrency, l.rt_p50 AS p50, l.rt_p99 AS p99
         FROM (SELECT service, resource, instance, sum(pass)::float8 AS pass,
                      sum(block)::float8 AS block, sum(success)::float8 AS success,
                      sum(error)::float8 AS error,
                      sum(rt_avg * (success + error))::float8 AS rt_sum,
                      (extract(epoch FROM max(second)) * 1000)::float8 AS last_second,
                      ${HISTOGRAM_CONCAT_SQL} AS rt_hist
                 FROM w GROUP BY service, resource, instance) AS g
         JOIN latest l USING (service, resource, instance)`,
      [untilMs - seconds * 1000, untilMs, service ?? null],
    );
    interface Sum {
      service: string;
      resource: string;
      instances: number;
      pass: number;
      block: number;
      success: number;
      error: number;
      rtSum: number;
      lastSecond: number;
      concurrency: number;
      /** The highest reported p50 / p99 of an instance (rows without histograms). */
      p50: number | null;
      p99: number | null;
      hist: Float64Array | undefined;
      highest: number;
    }
    const byResource = new Map<string, Sum>();
    for (const r of res.rows) {
      const key = `${r.service}\u0000${r.resource}`;
      let sum = byResource.get(key);
      if (sum === undefined) {
        sum = {
          service: r.service,
          resource: r.resource,
          instances: 0,
          pass: 0,
          block: 0,
          success: 0,
          error: 0,
          rtSum: 0,
          lastSecond: 0,
          concurrency: 0,
          p50: null,
          p99: null,
          hist: undefined,
          highest: 0,
        };
        byResource.set(key, sum);
      }
      sum.instances++;
      sum.pass += r.pass;
      sum.block += r.block;
      sum.success += r.success;
      sum.error += r.error;
      sum.rtSum += r.rt_sum ?? 0;
      sum.lastSecond = Math.max(sum.lastSecond, r.last_second);
      sum.concurrency += r.concurrency;
      if (r.p50 !== null) sum.p50 = Math.max(sum.p50 ?? 0, r.p50);
      if (r.p99 !== null) sum.p99 = Math.max(sum.p99 ?? 0, r.p99);
      const own = decodeHistogram(r.rt_hist);
      if (own !== undefined) {
        sum.hist ??= new Float64Array(HISTOGRAM_BUCKETS);
        addSparseHistogram(sum.hist, own);
        sum.highest = Math.max(sum.highest, sparseQuantile(own, 0.99));
      }
    }
    return [...byResource.values()]
      .map((s) => {
        const calls = s.success + s.error;
        // Where no instance pushed a histogram, the highest instance's latest p50 / p99.
        const p50 = s.hist === undefined ? s.p50 : histogramQuantile(s.hist, 0.5);
        const p99 = s.hist === undefined ? s.p99 : histogramQuantile(s.hist, 0.99);
        const highest = s.hist === undefined ? s.p99 : s.highest;
        return {
          service: s.service,
          resource: s.resource,
          instances: s.instances,
          qps: calls / seconds,
          passQps: s.pass / seconds,
          blockQps: s.block / seconds,
          errorQps: s.error / seconds,
          rtAvgMs: calls > 0 ? s.rtSum / calls : 0,
          ...(p50 === null ? {} : { rtP50Ms: p50 }),
          ...(p99 === null ? {} : { rtP99Ms: p99 }),
          ...(highest === null ? {} : { rtP99HighestInstanceMs: highest }),
          concurrency: s.concurrency,
          lastSecond: s.lastSecond,
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
