import type { Migration } from '../../../server/migrator.js';

/**
 * Pushed per-second metrics keep their RT histogram (core's latency histogram, sparse: the
 * bucket indexes in `rt_hist_i`, their counts in `rt_hist_c`; a second's count fits an
 * integer, sums are taken as bigint), so readers add them over
 * instances and seconds for true percentiles. Rows pushed before it, or by an SDK that
 * sends none, have NULL there and keep their `rt_p99`.
 */
export const telemetryMetricHistograms: Migration = {
  version: 30,
  name: 'telemetry-metric-histograms',
  sql: `
    ALTER TABLE peak.telemetry_metrics ADD COLUMN rt_hist_i smallint[], ADD COLUMN rt_hist_c integer[];
  `,
};
