/**
 * The collector's span store in PostgreSQL (`peak.telemetry_spans`): batch insert
 * (idempotent per trace/span id), a trace by id, search, the service dependency topology
 * computed from client/server span pairs, endpoint latency percentiles, slow SQL, and a
 * bounded retention delete.
 */
import type pg from 'pg';
import type { AttributeValue, SpanKind, SpanRecord } from '../span-types.js';

/** Filters of {@link TelemetryStore.search}. */
export interface TraceSearch {
  service?: string;
  /** Span name (operation), exact. */
  name?: string;
  minDurationUs?: number;
  error?: boolean;
  stress?: boolean;
  /** Attribute equality, `key=value`. */
  tag?: { key: string; value: string };
  /** Only spans that started at or after this, epoch µs. */
  sinceUs: number;
  limit: number;
}

/** One search hit: the matching span of a trace (the longest one when several match). */
export interface TraceHit {
  traceId: string;
  spanId: string;
  service: string;
  name: string;
  startUs: number;
  durationUs: number;
  error: boolean;
  stress: boolean;
}

/** One edge of the dependency topology. */
export interface TopologyEdge {
  caller: string;
  callee: string;
  /** True for the stress-test share of the traffic on this edge (counted apart). */
  stress: boolean;
  calls: number;
  errors: number;
  /** Calls per second over the window. */
  qps: number;
  rtAvgMs: number;
  rtP99Ms: number;
}

/** Latency of one endpoint (server span name) of a service. */
export interface EndpointStats {
  service: string;
  name: string;
  stress: boolean;
  calls: number;
  errors: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
}

/** One statement fingerprint among the slowest SQL. */
export interface SlowSql {
  fingerprint: string;
  /** One statement text of the fingerprint (parameterised SQL), when spans carry it. */
  statement: string | null;
  service: string;
  shard: string | null;
  /** The service that called the one running the SQL, when known. */
  caller: string | null;
  calls: number;
  avgMs: number;
  maxMs: number;
  stress: boolean;
  /** The trace of the slowest of these calls, to open its waterfall. */
  slowestTraceId: string;
}

interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: SpanKind;
  service: string;
  peer_service: string | null;
  start_us: string;
  duration_us: string;
  error: boolean;
  error_message: string | null;
  stress: boolean;
  attributes: Record<string, AttributeValue>;
}

function toRecord(r: SpanRow): SpanRecord {
  const s: SpanRecord = {
    traceId: r.trace_id,
    spanId: r.span_id,
    name: r.name,
    kind: r.kind,
    service: r.service,
    startUs: Number(r.start_us),
    durationUs: Number(r.duration_us),
    error: r.error,
    stress: r.stress,
    attributes: r.attributes,
  };
  if (r.parent_span_id !== null) s.parentSpanId = r.parent_span_id;
  if (r.peer_service !== null) s.peerService = r.peer_service;
  if (r.error_message !== null) s.errorMessage = r.error_message;
  return s;
}

const ms = (us: unknown) => Math.round(Number(us ?? 0)) / 1000;

/** Span storage and analysis queries over one pool. */
export class TelemetryStore {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Stores spans; a span already stored (same trace and span id) is skipped. Returns rows added. */
  async insert(spans: readonly SpanRecord[]): Promise<number> {
    if (spans.length === 0) return 0;
    const col = <T>(pick: (s: SpanRecord) => T) => spans.map(pick);
    const res = await this.#pool.query(
      `INSERT INTO peak.telemetry_spans
         (trace_id, span_id, parent_span_id, name, kind, service, peer_service, start_us,
          duration_us, error, error_message, stress, attributes)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
          $7::text[], $8::bigint[], $9::bigint[], $10::boolean[], $11::text[], $12::boolean[], $13::jsonb[])
       ON CONFLICT (trace_id, span_id) DO NOTHING`,
      [
        col((s) => s.traceId),
        col((s) => s.spanId),
        col((s) => s.parentSpanId ?? null),
        col((s) => s.name),
        col((s) => s.kind),
        col((s) => s.service),
        col((s) => s.peerService ?? null),
        col((s) => Math.round(s.startUs)),
        col((s) => Math.round(s.durationUs)),
        col((s) => s.error),
        col((s) => s.errorMessage ?? null),
        col((s) => s.stress),
        col((s) => JSON.stringify(s.attributes)),
      ],
    );
    return res.rowCount ?? 0;
  }

  /** Every stored span of a trace, by start time. */
  async trace(traceId: string): Promise<SpanRecord[]> {
    const res = await this.#pool.query<SpanRow>(
      'SELECT * FROM peak.telemetry_spans WHERE trace_id = $1 ORDER BY start_us LIMIT 10000',
      [traceId],
    );
    return res.rows.map(toRecord);
  }

  /** Traces with a span matching every filter, newest first. */
  async search(q: TraceSearch): Promise<TraceHit[]> {
    const where = ['start_us >= $1'];
    const args: unknown[] = [q.sinceUs];
    const add = (sql: string, v: unknown) => {
      args.push(v);
      where.push(sql.replace('?', `$${args.length}`));
    };
    if (q.service !== undefined) add('service = ?', q.service);
    if (q.name !== undefined) add('name = ?', q.name);
    if (q.minDurationUs !== undefined) add('duration_us >= ?', q.minDurationUs);
    if (q.error !== undefined) add('error = ?', q.error);
    if (q.stress !== undefined) add('stress = ?', q.stress);
    if (q.tag !== undefined)
      add('attributes @> ?::jsonb', JSON.stringify({ [q.tag.key]: q.tag.value }));
    args.push(q.limit);
    const res = await this.#pool.query(
      `SELECT * FROM (
         SELECT DISTINCT ON (trace_id) trace_id, span_id, service, name, start_us, duration_us, error, stress
         FROM peak.telemetry_spans WHERE ${where.join(' AND ')}
         ORDER BY trace_id, duration_us DESC
       ) t ORDER BY start_us DESC LIMIT $${args.length}`,
      args,
    );
    return res.rows.map((r) => ({
      traceId: r.trace_id,
      spanId: r.span_id,
      service: r.service,
      name: r.name,
      startUs: Number(r.start_us),
      durationUs: Number(r.duration_us),
      error: r.error,
      stress: r.stress,
    }));
  }

  /**
   * The service dependency graph since `sinceUs`: one edge per caller → callee (and per
   * stress flag), from client (producer) spans joined to the server (consumer) span they
   * caused; one whose other side was not recorded counts toward its `peer_service`.
   */
  async topology(sinceUs: number, nowUs: number): Promise<TopologyEdge[]> {
    const res = await this.#pool.query(
      `SELECT c.service AS caller, coalesce(s.service, c.peer_service, 'unknown') AS callee,
              c.stress, count(*)::bigint AS calls, sum(c.error::int)::bigint AS errors,
              avg(c.duration_us) AS rt_avg,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY c.duration_us) AS rt_p99
         FROM peak.telemetry_spans c
         LEFT JOIN peak.telemetry_spans s
           ON s.trace_id = c.trace_id AND s.parent_span_id = c.span_id
          AND s.kind IN ('server', 'consumer')
        WHERE c.kind IN ('client', 'producer') AND c.start_us >= $1
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
      [sinceUs],
    );
    const seconds = Math.max(1, (nowUs - sinceUs) / 1e6);
    return res.rows.map((r) => ({
      caller: r.caller,
      callee: r.callee,
      stress: r.stress,
      calls: Number(r.calls),
      errors: Number(r.errors),
      qps: Math.round((Number(r.calls) / seconds) * 1000) / 1000,
      rtAvgMs: ms(r.rt_avg),
      rtP99Ms: ms(r.rt_p99),
    }));
  }

  /** p50/p90/p99 per server endpoint since `sinceUs`. */
  async endpoints(sinceUs: number, service?: string): Promise<EndpointStats[]> {
    const res = await this.#pool.query(
      `SELECT service, name, stress, count(*)::bigint AS calls, sum(error::int)::bigint AS errors,
              percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY duration_us) AS p
         FROM peak.telemetry_spans
        WHERE kind IN ('server', 'consumer') AND start_us >= $1 AND ($2::text IS NULL OR service = $2)
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3 LIMIT 1000`,
      [sinceUs, service ?? null],
    );
    return res.rows.map((r) => ({
      service: r.service,
      name: r.name,
      stress: r.stress,
      calls: Number(r.calls),
      errors: Number(r.errors),
      p50Ms: ms(r.p[0]),
      p90Ms: ms(r.p[1]),
      p99Ms: ms(r.p[2]),
    }));
  }

  /** The `limit` slowest statement fingerprints (by mean time) since `sinceUs`. */
  async slowSql(sinceUs: number, limit: number): Promise<SlowSql[]> {
    const res = await this.#pool.query(
      `SELECT q.attributes->>'db.statement.fingerprint' AS fingerprint, q.service,
              q.attributes->>'db.shard' AS shard, p.service AS caller, q.stress,
              count(*)::bigint AS calls, avg(q.duration_us) AS avg_us, max(q.duration_us) AS max_us,
              min(q.attributes->>'db.statement') AS statement,
              (array_agg(q.trace_id ORDER BY q.duration_us DESC))[1] AS slowest_trace
         FROM peak.telemetry_spans q
         LEFT JOIN LATERAL (
           SELECT c.service FROM peak.telemetry_spans srv
             JOIN peak.telemetry_spans c ON c.trace_id = srv.trace_id AND c.span_id = srv.parent_span_id
            WHERE srv.trace_id = q.trace_id AND srv.span_id = q.parent_span_id AND srv.kind = 'server'
            LIMIT 1) p ON true
        WHERE q.start_us >= $1 AND q.attributes ? 'db.statement.fingerprint'
        GROUP BY 1, 2, 3, 4, 5 ORDER BY avg(q.duration_us) DESC LIMIT $2`,
      [sinceUs, limit],
    );
    return res.rows.map((r) => ({
      fingerprint: r.fingerprint,
      statement: r.statement,
      service: r.service,
      shard: r.shard,
      caller: r.caller,
      calls: Number(r.calls),
      avgMs: ms(r.avg_us),
      maxMs: ms(r.max_us),
      stress: r.stress,
      slowestTraceId: r.slowest_trace,
    }));
  }

  /** Deletes up to `batch` spans that started before `beforeUs`; returns how many. */
  async prune(beforeUs: number, batch = 10000): Promise<number> {
    const res = await this.#pool.query(
      `DELETE FROM peak.telemetry_spans WHERE ctid IN (
         SELECT ctid FROM peak.telemetry_spans WHERE start_us < $1 LIMIT $2)`,
      [beforeUs, batch],
    );
    return res.rowCount ?? 0;
  }
}
