/**
 * Telemetry's control-plane routes (the collector and the analysis API), one file a concern:
 *
 * - span ingest, SDK and OTLP/HTTP (JSON or protobuf, gzip or not): telemetry-span-routes.ts;
 * - per-second metrics, pushed and read live (`peak top`): telemetry-metrics-routes.ts;
 * - trace, topology, endpoint and slow-SQL queries: telemetry-query-routes.ts;
 * - SLA alert rules, silences, events and the evaluator: telemetry-alert-routes.ts. Rules
 *   are evaluated every `PEAK_TELEMETRY_ALERT_INTERVAL_MS` (default 10000) by the one node
 *   holding the evaluator lock; `PEAK_TELEMETRY_ALERT_EVALUATOR=off` keeps a node out;
 * - `GET /metrics`, Prometheus text: telemetry-prometheus-route.ts.
 *
 * Spans older than the retention (env `PEAK_TELEMETRY_RETENTION_HOURS`, default 72) are
 * deleted in bounded batches once a minute (telemetry-retention.ts).
 */
import { AdvisoryLeader, ALERT_EVALUATOR_LOCK_KEY } from '../../server/advisory-leader.js';
import type { ApiApp, ApiContext, ApiModule } from '../../server/http-api.js';
import type { TelemetryModuleOptions } from './mq-backlog-source.js';
import { AlertEvaluator } from './telemetry-alert-evaluator.js';
import { alertRoutes } from './telemetry-alert-routes.js';
import { newCollectorCounters } from './telemetry-collector-counters.js';
import { metricsRoutes } from './telemetry-metrics-routes.js';
import { TelemetryMetricsStore } from './telemetry-metrics-store.js';
import { prometheusRoute } from './telemetry-prometheus-route.js';
import { traceQueryRoutes } from './telemetry-query-routes.js';
import { startRetention } from './telemetry-retention.js';
import { spanIngestRoutes } from './telemetry-span-routes.js';
import { TelemetryStore } from './telemetry-store.js';

/** The collector, the analysis API and /metrics, reading mq's backlog through `options`. */
export function telemetryRoutes(options: TelemetryModuleOptions): ApiModule {
  return (app, ctx) => registerTelemetryRoutes(app, ctx, options);
}

function registerTelemetryRoutes(
  app: ApiApp,
  ctx: ApiContext,
  options: TelemetryModuleOptions,
): void {
  const store = new TelemetryStore(ctx.pool);
  const metricsStore = new TelemetryMetricsStore(ctx.pool);
  const counters = newCollectorCounters();
  const mqBacklog = options.mqBacklog(ctx.pool);
  const { spanRetentionMs, metricsRetentionMs } = ctx.settings.telemetry;
  const stopRetention = startRetention({
    store,
    metricsStore,
    counters,
    spanRetentionMs,
    metricsRetentionMs,
    logger: ctx.logger,
  });
  const alertLogger = ctx.logger.child({ component: 'alerts' });
  const alerts = new AlertEvaluator(
    ctx.pool,
    alertLogger,
    mqBacklog,
    new AdvisoryLeader(ctx.pool, ALERT_EVALUATOR_LOCK_KEY, alertLogger),
  );
  // PEAK_TELEMETRY_ALERT_EVALUATOR=off: this node serves the API but never evaluates.
  if (ctx.settings.telemetry.alertEvaluator) alerts.start(ctx.settings.telemetry.alertIntervalMs);
  app.addHook('onClose', async () => {
    stopRetention();
    await alerts.stop();
  });

  spanIngestRoutes(app, store, counters);
  metricsRoutes(app, metricsStore, counters);
  traceQueryRoutes(app, store);
  alertRoutes(app, alerts, ctx.nodeId);
  prometheusRoute(app, ctx, counters, alerts, mqBacklog);
}
