import type { Migration } from '../../../server/migrator.js';

/**
 * Telemetry's collector store: one row per span (from the SDK or OTLP), keyed by trace and
 * span id so a re-sent batch is idempotent. Times are epoch microseconds. Retention is a
 * bounded periodic delete of spans older than the retention (see server/telemetry-store.ts).
 */
export const telemetry: Migration = {
  version: 5,
  name: 'telemetry',
  sql: `
    CREATE TABLE peak.telemetry_spans (
      trace_id       text NOT NULL,
      span_id        text NOT NULL,
      parent_span_id text,
      name           text NOT NULL,
      kind           text NOT NULL CHECK (kind IN ('internal', 'server', 'client', 'producer', 'consumer')),
      service        text NOT NULL,
      peer_service   text,
      start_us       bigint NOT NULL,
      duration_us    bigint NOT NULL CHECK (duration_us >= 0),
      error          boolean NOT NULL DEFAULT false,
      error_message  text,
      stress         boolean NOT NULL DEFAULT false,
      attributes     jsonb NOT NULL DEFAULT '{}',
      received_at    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (trace_id, span_id)
    );
    CREATE INDEX telemetry_spans_start ON peak.telemetry_spans (start_us);
    CREATE INDEX telemetry_spans_service_start ON peak.telemetry_spans (service, start_us);
  `,
};
