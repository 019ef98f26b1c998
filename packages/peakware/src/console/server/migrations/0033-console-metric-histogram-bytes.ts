import { histogramFromArraysSql } from '../../../core/pg-histograms.js';
import type { Migration } from '../../../server/migrator.js';

/**
 * Rolled-up metrics keep their merged RT histogram as one `rt_hist bytea` of 5-byte entries
 * (core's `pg-histograms.ts`) instead of two arrays (migration 31), as telemetry's rows do
 * since migration 32. Stored rows are converted.
 */
export const consoleMetricHistogramBytes: Migration = {
  version: 33,
  name: 'console-metric-histogram-bytes',
  sql: `
    ALTER TABLE peak.console_metrics ADD COLUMN rt_hist bytea;
    UPDATE peak.console_metrics SET rt_hist = ${histogramFromArraysSql('rt_hist_i', 'rt_hist_c', true)}
     WHERE rt_hist_i IS NOT NULL;
    ALTER TABLE peak.console_metrics DROP COLUMN rt_hist_i, DROP COLUMN rt_hist_c;
  `,
};
