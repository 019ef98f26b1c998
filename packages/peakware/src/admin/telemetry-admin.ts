/**
 * Telemetry's query API (`/api/v1/telemetry`): one trace as a tree, trace search, the
 * dependency topology, endpoint latencies, slow SQL, and the live per-second metrics SDKs
 * push. Answers are the collector's own view types.
 */

import type { LiveResource } from '../telemetry/server/telemetry-metrics-store.js';
import type {
  EndpointStats,
  SlowSql,
  TopologyEdge,
  TraceHit,
} from '../telemetry/server/telemetry-store.js';
import type { TraceNode, TraceTree } from '../telemetry/trace-tree.js';
import type { AdminTransport } from './admin-transport.js';

export type { EndpointStats, LiveResource, SlowSql, TopologyEdge, TraceHit, TraceNode, TraceTree };

/** Filters of a trace search. */
export interface TraceSearchQuery {
  service?: string;
  /** Span name (operation), exact. */
  name?: string;
  minDurationMs?: number;
  error?: boolean;
  stress?: boolean;
  /** An attribute that must match: `key=value`, or the pair. */
  tag?: string | { key: string; value: string };
  /** How far back, minutes. Default 60. */
  sinceMinutes?: number;
  /** Most traces, 1-1000. Default 50. */
  limit?: number;
}

/** The call graph of a period. */
export interface Topology {
  /** Start of the period, epoch µs. */
  sinceUs: number;
  services: string[];
  edges: TopologyEdge[];
}

/** The live per-second figures of the last `seconds`, summed over instances. */
export interface LiveMetrics {
  seconds: number;
  /** End of the period, epoch ms (the newest two seconds are left out: still arriving). */
  untilMs: number;
  resources: LiveResource[];
}

const BASE = '/api/v1/telemetry';

/** Telemetry's query calls. */
export class TelemetryAdmin {
  readonly #http: AdminTransport;

  constructor(http: AdminTransport) {
    this.#http = http;
  }

  /** One trace as a tree with its critical path (PEAK_NOT_FOUND when none of it is stored). */
  trace(traceId: string): Promise<TraceTree> {
    return this.#http.get(`${BASE}/traces/${encodeURIComponent(traceId.toLowerCase())}`);
  }

  /** Traces matching the filters, newest first. */
  async traces(q: TraceSearchQuery = {}): Promise<TraceHit[]> {
    const tag = typeof q.tag === 'object' ? `${q.tag.key}=${q.tag.value}` : q.tag;
    const r = await this.#http.get<{ traces: TraceHit[] }>(`${BASE}/traces`, {
      query: {
        service: q.service,
        name: q.name,
        minDurationMs: q.minDurationMs,
        error: q.error,
        stress: q.stress,
        tag,
        sinceMinutes: q.sinceMinutes,
        limit: q.limit,
      },
    });
    return r.traces;
  }

  /** Caller → callee edges (calls, errors, QPS, RT) of the last `sinceMinutes` (default 15). */
  topology(options: { sinceMinutes?: number } = {}): Promise<Topology> {
    return this.#http.get(`${BASE}/topology`, { query: { sinceMinutes: options.sinceMinutes } });
  }

  /** p50/p90/p99 per endpoint (server span name) of the last `sinceMinutes` (default 15). */
  async endpoints(
    options: { service?: string; sinceMinutes?: number } = {},
  ): Promise<EndpointStats[]> {
    const r = await this.#http.get<{ endpoints: EndpointStats[] }>(`${BASE}/endpoints`, {
      query: { service: options.service, sinceMinutes: options.sinceMinutes },
    });
    return r.endpoints;
  }

  /** The slowest statement fingerprints of the last `sinceMinutes` (default 60). */
  async slowSql(options: { sinceMinutes?: number; limit?: number } = {}): Promise<SlowSql[]> {
    const r = await this.#http.get<{ statements: SlowSql[] }>(`${BASE}/slow-sql`, {
      query: { sinceMinutes: options.sinceMinutes, limit: options.limit },
    });
    return r.statements;
  }

  /** QPS, errors, blocked, RT and concurrency per service and resource (what `peak top` shows). */
  liveMetrics(options: { service?: string; seconds?: number } = {}): Promise<LiveMetrics> {
    return this.#http.get(`${BASE}/metrics/live`, {
      query: { service: options.service, seconds: options.seconds },
    });
  }
}
