/**
 * Telemetry's control-plane half: the span and metrics stores, the collector routes (SDK and
 * OTLP/HTTP), `/metrics`, and the SLA alert evaluator, as one {@link PeakModule}; see
 * ../README.md. It reads mq's consumer backlog through `MqBacklogSource`, which the
 * host passes in (`telemetryModule({ mqBacklog })` in src/server/modules.ts).
 */
import type { PeakModule } from '../../server/peak-module.js';
import { telemetry } from './migrations/0005-telemetry.js';
import { telemetryAlerts } from './migrations/0006-telemetry-alerts.js';
import { telemetryRulesMetrics } from './migrations/0007-telemetry-rules-metrics.js';
import { telemetryRuleResource } from './migrations/0008-telemetry-rule-resource.js';
import { telemetryMetricHistograms } from './migrations/0030-telemetry-metric-histograms.js';
import { telemetryMetricHistogramBytes } from './migrations/0032-telemetry-metric-histogram-bytes.js';
import type { TelemetryModuleOptions } from './mq-backlog-source.js';
import { telemetryRoutes } from './telemetry-routes.js';

export {
  type MetricBucket,
  type MetricBucketGrouping,
  type MetricBucketQuery,
  type MetricBucketReader,
  openMetricBuckets,
} from './metric-buckets.js';
export type {
  MqBacklogSource,
  MqQueueBacklog,
  TelemetryModuleOptions,
} from './mq-backlog-source.js';

/** The telemetry module (collector, metrics, alerts), given what it reads of other subsystems. */
export function telemetryModule(options: TelemetryModuleOptions): PeakModule {
  return {
    name: 'telemetry',
    migrations: [
      telemetry,
      telemetryAlerts,
      telemetryRulesMetrics,
      telemetryRuleResource,
      telemetryMetricHistograms,
      telemetryMetricHistogramBytes,
    ],
    routes: telemetryRoutes(options),
  };
}
