/**
 * Retention: spans older than `spanRetentionMs` (`PEAK_TELEMETRY_RETENTION_HOURS`, default
 * 72 h) and pushed metrics older than `metricsRetentionMs` are deleted in bounded batches
 * once a minute, one pass at a time.
 */
import type { Logger } from '../../core/logger.js';
import type { CollectorCounters } from './telemetry-collector-counters.js';
import type { TelemetryMetricsStore } from './telemetry-metrics-store.js';
import type { TelemetryStore } from './telemetry-store.js';

/** What {@link startRetention} prunes, and how long each kind is kept. */
export interface RetentionOptions {
  store: TelemetryStore;
  metricsStore: TelemetryMetricsStore;
  counters: CollectorCounters;
  spanRetentionMs: number;
  metricsRetentionMs: number;
  logger: Logger;
}

/** Starts the once-a-minute retention delete; the returned function stops it. */
export function startRetention(options: RetentionOptions): () => void {
  const { store, metricsStore, counters, logger } = options;
  const retentionUs = options.spanRetentionMs * 1000;
  let pruning = false;
  const timer = setInterval(() => {
    if (pruning) return;
    pruning = true;
    store
      .prune(Date.now() * 1000 - retentionUs)
      .then(async (n) => {
        counters.pruned += n;
        counters.metricsPruned += await metricsStore.prune(Date.now() - options.metricsRetentionMs);
      })
      .catch((err: unknown) => logger.warn({ err }, 'telemetry retention delete failed'))
      .finally(() => {
        pruning = false;
      });
  }, 60_000);
  timer.unref();
  return () => clearInterval(timer);
}
