import type { Migration } from '../../../server/migrator.js';

/**
 * Telemetry, second round: MQ-backlog and burn-rate alert rules (a rule may watch a consumer
 * group on a topic instead of a service; a burn-rate rule has an SLO objective, an optional
 * latency bound and a short window beside its long one, up to 3 days), extra figures on
 * events (`details`), and the per-second service metrics SDKs push to the control plane
 * (kept for a bounded time, read by `peak top`).
 */
export const telemetryRulesMetrics: Migration = {
  version: 7,
  name: 'telemetry-rules-metrics',
  sql: `
    ALTER TABLE peak.telemetry_alert_rules
      ALTER COLUMN service DROP NOT NULL,
      ALTER COLUMN window_seconds SET DEFAULT 60,
      DROP CONSTRAINT telemetry_alert_rules_kind_check,
      ADD CONSTRAINT telemetry_alert_rules_kind_check
        CHECK (kind IN ('p99', 'error-rate', 'mq-backlog', 'burn-rate')),
      DROP CONSTRAINT telemetry_alert_rules_window_seconds_check,
      ADD CONSTRAINT telemetry_alert_rules_window_seconds_check
        CHECK (window_seconds BETWEEN 1 AND 259200),
      ADD COLUMN mq_group text,
      ADD COLUMN mq_topic text,
      ADD COLUMN objective double precision CHECK (objective > 0 AND objective < 1),
      ADD COLUMN latency_ms double precision CHECK (latency_ms > 0),
      ADD COLUMN short_window_seconds integer CHECK (short_window_seconds BETWEEN 1 AND 259200),
      ADD CONSTRAINT telemetry_alert_rules_target_check CHECK (
        CASE WHEN kind = 'mq-backlog' THEN mq_group IS NOT NULL AND mq_topic IS NOT NULL
             ELSE service IS NOT NULL END);
    ALTER TABLE peak.telemetry_alert_events ADD COLUMN details jsonb NOT NULL DEFAULT '{}';

    CREATE TABLE peak.telemetry_metrics (
      service      text NOT NULL,
      instance     text NOT NULL,
      resource     text NOT NULL,
      second       timestamptz NOT NULL,
      pass         integer NOT NULL,
      block        integer NOT NULL,
      success      integer NOT NULL,
      error        integer NOT NULL,
      rt_avg       double precision NOT NULL,
      rt_p50       double precision,
      rt_p99       double precision,
      concurrency  integer NOT NULL,
      PRIMARY KEY (service, resource, instance, second)
    );
    CREATE INDEX telemetry_metrics_second ON peak.telemetry_metrics (second);
  `,
};
