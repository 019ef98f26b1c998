import type { Migration } from '../../../server/migrator.js';

/**
 * Rolled-up metrics keep the merged RT histogram of their bucket (sparse: indexes and
 * counts), so an hour's p99 is the p99 of its minutes' calls, not the highest minute's.
 */
export const consoleMetricHistograms: Migration = {
  version: 31,
  name: 'console-metric-histograms',
  sql: `
    ALTER TABLE peak.console_metrics ADD COLUMN rt_hist_i smallint[], ADD COLUMN rt_hist_c bigint[];
  `,
};
