import type { Migration } from '../../../server/migrator.js';

/**
 * The message queue records a message's first delivery of a copy in the row that ends it
 * (acked, failed, dead-lettered) instead of a trace row of its own: one trace row per
 * consumed message instead of two. `mq_deliveries.delivered_at` is when the current
 * attempt was handed out (NULL once recorded); `mq_trace.delivered_at` carries it into the
 * ending event, and the trace query shows it as a 'delivered' event. Both columns are
 * nullable without a default: adding them rewrites nothing.
 */
export const mqDeliveredAt: Migration = {
  version: 10,
  name: 'mq-delivered-at',
  sql: `
    ALTER TABLE peak.mq_deliveries ADD COLUMN delivered_at timestamptz;
    ALTER TABLE peak.mq_trace ADD COLUMN delivered_at timestamptz;
  `,
};
