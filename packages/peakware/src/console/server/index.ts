/**
 * The console's control-plane half as one {@link PeakModule}: its static files at
 * `/console`, login sessions, the audit trail and the metrics history; see ../README.md. It
 * reads telemetry's pushed metrics through `MetricBucketSource`, which the host passes in
 * (`consoleModule({ metrics: openMetricBuckets })` in src/server/modules.ts).
 */
import type { PeakModule } from '../../server/peak-module.js';
import { consoleRoutes } from './console-routes.js';
import type { ConsoleModuleOptions } from './metric-bucket-source.js';
import { consoleTables } from './migrations/0012-console.js';
import { consoleMetricHistograms } from './migrations/0031-console-metric-histograms.js';
import { consoleMetricHistogramBytes } from './migrations/0033-console-metric-histogram-bytes.js';

export type {
  ConsoleModuleOptions,
  MetricBucketRow,
  MetricBucketSource,
} from './metric-bucket-source.js';

/** The console module, given what it reads of other subsystems. */
export function consoleModule(options: ConsoleModuleOptions): PeakModule {
  return {
    name: 'console',
    migrations: [consoleTables, consoleMetricHistograms, consoleMetricHistogramBytes],
    routes: consoleRoutes(options),
  };
}
