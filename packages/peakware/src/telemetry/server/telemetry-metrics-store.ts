/**
 * The per-second service metrics SDKs push (`peak.telemetry_metrics`, one row per service,
 * resource, instance and second or window bucket): batch insert, the live view `peak top`
 * reads (rates summed over instances for the last N seconds), and a bounded retention
 * delete.
 */
import type pg from 'pg';
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
  /** The highest instance's latest RT p50 / p99, ms (absent when not reported). */
  rtP50Ms?: number;
  rtP99Ms?: number;
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
          rt_p99, concurrency)
       SELECT $1, $2, r, to_timestamp(s / 1000.0), p, b, ok, e, avg, p50, p99, c
         FROM unnest($3::text[], $4::float8[], $5::int[], $6::int[], $7::int[], $8::int[],
                     $9::float8[], $10::float8[], $11::float8[], $12::int[])
           AS t(r, s, p, b, ok, e, avg, p50, p99, c)
       ON CONFLICT (service, resource, instance, second) DO UPDATE SET
         pass = excluded.pass, block = excluded.block, success = excluded.success,
         error = excluded.error, rt_avg = excluded.rt_avg, rt_p50 = excluded.rt_p50,
         rt_p99 = excluded.rt_p99, concurrency = excluded.concurrency`,
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
      ],
    );
    return res.rowCount ?? 0;
  }

  /**
   * Figures per service and resource over the `seconds` before `untilMs` (callers leave a
   * second or two for pushes still on their way), busiest first.
   */
  async live(seconds: number, untilMs: number, service?: string): Promise<LiveResource[]> {
    const res = await this.#pool.query(
      `WITH w AS (
         SELECT * FROM peak.telemetry_metrics
          WHERE second >= to_timestamp($1 / 1000.0) AND second < to_timestamp($2 / 1000.0)
            AND ($3::text IS NULL OR service = $3)),
       latest AS (
         SELECT DISTINCT ON (service, resource, instance) service, resource, instance,
                concurrency, rt_p50, rt_p99
           FROM w ORDER BY service, resource, instance, second DESC)
       SELECT w.service, w.resource, count(DISTINCT w.instance)::int AS instances,
              sum(w.pass)::float8 AS pass, sum(w.block)::float8 AS block,
              sum(w.success)::float8 AS success, sum(w.error)::float8 AS error,
              (sum(w.rt_avg * (w.success + w.error)) / nullif(sum(w.success + w.error), 0))::float8 AS rt_avg,
              (SELECT max(l.rt_p50) FROM latest l WHERE l.service = w.service AND l.resource = w.resource) AS p50,
              (SELECT max(l.rt_p99) FROM latest l WHERE l.service = w.service AND l.resource = w.resource) AS p99,
              (SELECT sum(l.concurrency) FROM latest l WHERE l.service = w.service AND l.resource = w.resource)::int AS concurrency,
              (extract(epoch FROM max(w.second)) * 1000)::float8 AS last_second
         FROM w GROUP BY w.service, w.resource`,
      [untilMs - seconds * 1000, untilMs, service ?? null],
    );
    return res.rows
      .map((r) => ({
        service: r.service as string,
        resource: r.resource as string,
        instances: r.instances as number,
        qps: (r.success + r.error) / seconds,
        passQps: r.pass / seconds,
        blockQps: r.block / seconds,
        errorQps: r.error / seconds,
        rtAvgMs: r.rt_avg ?? 0,
        ...(r.p50 === null ? {} : { rtP50Ms: Number(r.p50) }),
        ...(r.p99 === null ? {} : { rtP99Ms: Number(r.p99) }),
        concurrency: r.concurrency ?? 0,
        lastSecond: r.last_second as number,
      }))
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
