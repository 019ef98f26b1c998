/** The collector's counters on this node since it started, shown on `/metrics`. */

/** Collector counters (this node, since start). */
export interface CollectorCounters {
  /** Span batches received (SDK and OTLP). */
  batches: number;
  /** Spans received. */
  received: number;
  /** Spans stored (duplicates skipped). */
  stored: number;
  /** Ingest requests rejected as malformed. */
  rejected: number;
  /** OTLP/HTTP requests received. */
  otlpBatches: number;
  /** Spans deleted by retention. */
  pruned: number;
  /** Per-second metric records pushed by SDKs. */
  metricsReceived: number;
  /** Pushed metric records deleted by retention. */
  metricsPruned: number;
}

/** Counters at zero. */
export function newCollectorCounters(): CollectorCounters {
  return {
    batches: 0,
    received: 0,
    stored: 0,
    rejected: 0,
    otlpBatches: 0,
    pruned: 0,
    metricsReceived: 0,
    metricsPruned: 0,
  };
}
