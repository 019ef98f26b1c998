import type { Migration } from '../../../server/migrator.js';

/**
 * The console: login sessions (only a hash of the cookie is stored; `role` is what the
 * session may do, so roles from other credentials can be attached later), the audit of
 * every admitted admin call (who, from where, what, how it ended), and the metrics history
 * (pushed per-second metrics rolled up per minute, kept a day, and per hour, kept 7 days).
 */
export const consoleTables: Migration = {
  version: 12,
  name: 'console',
  sql: `
    CREATE TABLE peak.console_sessions (
      id_hash       bytea PRIMARY KEY,
      name          text NOT NULL,
      role          text NOT NULL CHECK (role IN ('admin', 'viewer')),
      credential    text NOT NULL,
      created_from  text NOT NULL,
      user_agent    text NOT NULL DEFAULT '',
      created_at    timestamptz NOT NULL DEFAULT now(),
      last_seen_at  timestamptz NOT NULL DEFAULT now(),
      expires_at    timestamptz NOT NULL,
      ended_at      timestamptz
    );
    CREATE INDEX console_sessions_expires ON peak.console_sessions (expires_at);

    CREATE TABLE peak.console_audit (
      id          bigserial PRIMARY KEY,
      at          timestamptz NOT NULL DEFAULT now(),
      who         text NOT NULL,
      via         text NOT NULL,
      role        text NOT NULL,
      from_addr   text NOT NULL,
      user_agent  text NOT NULL DEFAULT '',
      method      text NOT NULL,
      route       text NOT NULL,
      url         text NOT NULL,
      status      integer NOT NULL
    );
    CREATE INDEX console_audit_at ON peak.console_audit (at);

    CREATE TABLE peak.console_metrics (
      step_seconds integer NOT NULL CHECK (step_seconds IN (60, 3600)),
      bucket       timestamptz NOT NULL,
      service      text NOT NULL,
      resource     text NOT NULL,
      pass         double precision NOT NULL,
      block        double precision NOT NULL,
      success      double precision NOT NULL,
      error        double precision NOT NULL,
      rt_sum       double precision NOT NULL,
      rt_p99       double precision,
      instances    integer NOT NULL,
      PRIMARY KEY (step_seconds, service, resource, bucket)
    );
    CREATE INDEX console_metrics_bucket ON peak.console_metrics (step_seconds, bucket);
  `,
};
