/**
 * What one evaluation of an alert rule measures, by kind: p99 and error rate over the
 * collector's spans (real traffic only) or over a resource's pushed per-second metrics,
 * consumer backlog from mq's reader, and the long and short windows of a burn rate. The SQL
 * gathers the figures; telemetry-alert-logic.ts decides what they mean.
 */
import type pg from 'pg';
import { histogramIndex, sparseQuantile } from '../../core/latency-histogram.js';
import {
  decodeHistogram,
  HISTOGRAM_CONCAT_SQL,
  histogramCountAboveSql,
} from '../../core/pg-histograms.js';
import type { MqBacklogSource } from './mq-backlog-source.js';
import {
  burnMeasure,
  type CallCounts,
  defaultShortWindowSeconds,
  type Measure,
  metricsWindow,
  thresholdMeasure,
} from './telemetry-alert-logic.js';
import type { AlertRule } from './telemetry-alert-rules.js';

/** Measures rules against the stored spans, pushed metrics and mq's backlog. */
export class AlertMeasures {
  readonly #pool: pg.Pool;
  readonly #mq: MqBacklogSource;

  /** `mq` reads consumer backlog for `mq-backlog` rules. */
  constructor(pool: pg.Pool, mq: MqBacklogSource) {
    this.#pool = pool;
    this.#mq = mq;
  }

  /** One measurement of `rule` at `now` (epoch ms). */
  measure(rule: AlertRule, now: number): Promise<Measure> {
    return rule.kind === 'mq-backlog'
      ? this.#measureBacklog(rule)
      : rule.kind === 'burn-rate'
        ? this.#measureBurn(rule, now)
        : this.#measureSpans(rule, now);
  }

  async #measureSpans(rule: AlertRule, now: number): Promise<Measure> {
    if (rule.resource !== undefined && rule.kind === 'p99')
      return this.#measureMetricsP99(rule, now);
    if (rule.resource !== undefined) {
      const c = await this.#countMetrics(rule, now, rule.windowSeconds);
      return thresholdMeasure(rule, c.calls, c.calls === 0 ? 0 : c.bad / c.calls, {
        calls: c.calls,
        errors: c.bad,
        source: 'metrics',
      });
    }
    const m = await this.#pool.query(
      `SELECT count(*)::bigint AS calls, sum(error::int)::bigint AS errors,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_us) AS p99
         FROM peak.telemetry_spans
        WHERE service = $1 AND kind IN ('server', 'consumer') AND NOT stress
          AND start_us >= $2 AND ($3::text IS NULL OR name = $3)`,
      [rule.service, (now - rule.windowSeconds * 1000) * 1000, rule.endpoint ?? null],
    );
    const calls = Number(m.rows[0]?.calls ?? 0);
    const value =
      rule.kind === 'p99'
        ? Number(m.rows[0]?.p99 ?? 0) / 1000
        : calls === 0
          ? 0
          : Number(m.rows[0]?.errors ?? 0) / calls;
    return thresholdMeasure(rule, calls, value, { calls });
  }

  /**
   * The p99 (ms) of every call of `rule.resource` over the window, from the RT histograms
   * its instances pushed, added together (the last second left out, as pushes may still be
   * coming). Seconds pushed without a histogram count as calls but give no latency.
   */
  async #measureMetricsP99(rule: AlertRule, now: number): Promise<Measure> {
    const { from, until } = metricsWindow(now, rule.windowSeconds, rule.windowSeconds);
    const m = await this.#pool.query(
      `SELECT coalesce(sum(success + error), 0)::float8 AS calls, ${HISTOGRAM_CONCAT_SQL} AS rt_hist
         FROM peak.telemetry_metrics
        WHERE service = $1 AND resource = $2
          AND second >= to_timestamp($3 / 1000.0) AND second < to_timestamp($4 / 1000.0)`,
      [rule.service, rule.resource, from, until],
    );
    const row = m.rows[0] ?? {};
    const calls = Number(row.calls ?? 0);
    const hist = decodeHistogram(row.rt_hist);
    const measured =
      hist === undefined ? 0 : hist.reduce((n, v, k) => (k % 2 === 1 ? n + v : n), 0);
    return thresholdMeasure(
      rule,
      hist === undefined ? 0 : calls,
      hist === undefined ? 0 : sparseQuantile(hist, 0.99),
      {
        calls,
        measured,
        source: 'metrics',
      },
    );
  }

  /**
   * Calls and failures of `rule.resource` from pushed metrics over the long and short
   * windows ending one whole second ago (pushes of the last second may still be coming).
   */
  async #countMetrics(rule: AlertRule, now: number, shortSeconds: number): Promise<CallCounts> {
    const { from, shortFrom, until } = metricsWindow(now, rule.windowSeconds, shortSeconds);
    // With a latency objective, a second's bad calls are its failures plus the calls its
    // RT histogram puts in a bucket above the one holding `latencyMs` (capped at its calls).
    const slowAbove = rule.latencyMs === undefined ? null : histogramIndex(rule.latencyMs);
    const m = await this.#pool.query(
      `WITH s AS (
         SELECT second, success + error AS calls,
                least(success + error, error + CASE WHEN $6::int IS NULL THEN 0 ELSE
                  ${histogramCountAboveSql('rt_hist', '$6::int')} END) AS bad
           FROM peak.telemetry_metrics
          WHERE service = $1 AND resource = $2
            AND second >= to_timestamp($3 / 1000.0) AND second < to_timestamp($5 / 1000.0))
       SELECT coalesce(sum(calls), 0)::float8 AS calls,
              coalesce(sum(bad), 0)::float8 AS bad,
              coalesce(sum(calls) FILTER (WHERE second >= to_timestamp($4 / 1000.0)), 0)::float8 AS short_calls,
              coalesce(sum(bad) FILTER (WHERE second >= to_timestamp($4 / 1000.0)), 0)::float8 AS short_bad
         FROM s`,
      [rule.service, rule.resource, from, shortFrom, until, slowAbove],
    );
    const row = m.rows[0] ?? {};
    return {
      calls: Number(row.calls ?? 0),
      bad: Number(row.bad ?? 0),
      shortCalls: Number(row.short_calls ?? 0),
      shortBad: Number(row.short_bad ?? 0),
    };
  }

  async #measureBacklog(rule: AlertRule): Promise<Measure> {
    const queues = await this.#mq.backlog(rule.group ?? '', rule.topic ?? '');
    const backlog = queues.reduce((a, q) => a + q.backlog, 0);
    const inflight = queues.reduce((a, q) => a + q.inflight, 0);
    return {
      breach: backlog > rule.threshold,
      value: backlog,
      qps: 0,
      details: { group: rule.group, topic: rule.topic, inflight, queues: queues.length },
    };
  }

  async #measureBurn(rule: AlertRule, now: number): Promise<Measure> {
    const short = rule.shortWindowSeconds ?? defaultShortWindowSeconds(rule.windowSeconds);
    let c: CallCounts;
    if (rule.resource !== undefined) {
      c = await this.#countMetrics(rule, now, short);
    } else {
      const shortFrom = (now - short * 1000) * 1000;
      const latencyUs = rule.latencyMs === undefined ? null : rule.latencyMs * 1000;
      const m = await this.#pool.query(
        `WITH calls AS (
           SELECT start_us, (error OR ($4::float8 IS NOT NULL AND duration_us > $4::float8)) AS bad
             FROM peak.telemetry_spans
            WHERE service = $1 AND kind IN ('server', 'consumer') AND NOT stress
              AND start_us >= $2 AND ($3::text IS NULL OR name = $3))
         SELECT count(*)::bigint AS calls, count(*) FILTER (WHERE bad)::bigint AS bad,
                count(*) FILTER (WHERE start_us >= $5)::bigint AS short_calls,
                count(*) FILTER (WHERE bad AND start_us >= $5)::bigint AS short_bad
           FROM calls`,
        [
          rule.service,
          (now - rule.windowSeconds * 1000) * 1000,
          rule.endpoint ?? null,
          latencyUs,
          shortFrom,
        ],
      );
      const row = m.rows[0] ?? {};
      c = {
        calls: Number(row.calls ?? 0),
        bad: Number(row.bad ?? 0),
        shortCalls: Number(row.short_calls ?? 0),
        shortBad: Number(row.short_bad ?? 0),
      };
    }
    return burnMeasure(rule, c);
  }
}
