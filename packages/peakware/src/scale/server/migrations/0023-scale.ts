import type { Migration } from '../../../server/migrator.js';

/**
 * Elastic scaling: what each supervisor last reported (its services and instances), the
 * count and primary version the control plane wants of each supervised service, and every
 * scaling decision with the figures behind it (`peak scale history`).
 */
export const scale: Migration = {
  version: 23,
  name: 'scale',
  sql: `
    CREATE TABLE peak.scale_supervisors (
      supervisor_id text PRIMARY KEY,
      app           text NOT NULL,
      host          text NOT NULL,
      pid           integer NOT NULL,
      services      jsonb NOT NULL,
      instances     jsonb NOT NULL,
      reported_at   timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX scale_supervisors_app ON peak.scale_supervisors (app);

    CREATE TABLE peak.scale_services (
      app             text NOT NULL,
      service         text NOT NULL,
      desired         integer CHECK (desired >= 0),
      primary_version text,
      primary_command text,
      last_change_at  timestamptz,
      PRIMARY KEY (app, service)
    );

    CREATE TABLE peak.scale_decisions (
      id        bigserial PRIMARY KEY,
      at        timestamptz NOT NULL DEFAULT now(),
      app       text NOT NULL,
      service   text NOT NULL,
      action    text NOT NULL CHECK (action IN ('out', 'in', 'hold', 'invalid')),
      current   integer NOT NULL,
      desired   integer NOT NULL,
      metric    text,
      value     double precision,
      target    double precision,
      reason    text NOT NULL,
      figures   jsonb NOT NULL DEFAULT '{}',
      node      text NOT NULL
    );
    CREATE INDEX scale_decisions_service ON peak.scale_decisions (app, service, id);
  `,
};
