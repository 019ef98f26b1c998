import type { Migration } from '../../../server/migrator.js';

/**
 * Telemetry SLA alerts: rules ("p99 RT of order.create < 30 ms while QPS ≥ 8000", error
 * rate) evaluated by peak server over the collector's spans, and the fired/resolved events
 * they produced (with the webhook delivery outcome).
 */
export const telemetryAlerts: Migration = {
  version: 6,
  name: 'telemetry-alerts',
  sql: `
    CREATE TABLE peak.telemetry_alert_rules (
      name           text PRIMARY KEY,
      service        text NOT NULL,
      endpoint       text,
      kind           text NOT NULL CHECK (kind IN ('p99', 'error-rate')),
      threshold      double precision NOT NULL CHECK (threshold >= 0),
      min_qps        double precision NOT NULL DEFAULT 0 CHECK (min_qps >= 0),
      window_seconds integer NOT NULL CHECK (window_seconds BETWEEN 1 AND 3600),
      for_seconds    integer NOT NULL DEFAULT 0 CHECK (for_seconds BETWEEN 0 AND 86400),
      webhook        text,
      silenced_until timestamptz,
      created_at     timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE peak.telemetry_alert_events (
      id             bigserial PRIMARY KEY,
      rule           text NOT NULL,
      state          text NOT NULL CHECK (state IN ('fired', 'resolved')),
      value          double precision NOT NULL,
      qps            double precision NOT NULL,
      at             timestamptz NOT NULL DEFAULT now(),
      delivery       text NOT NULL DEFAULT 'pending'
    );
    CREATE INDEX telemetry_alert_events_rule ON peak.telemetry_alert_events (rule, id);
  `,
};
