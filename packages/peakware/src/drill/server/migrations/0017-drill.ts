import type { Migration } from '../../../server/migrator.js';

/**
 * Drills and plans. `drill_reports`: what each process incarnation (boot) last reported
 * holding, the source of `peak drill status` and of fault targeting (faults themselves live
 * in the config item `drill/faults` of their app). `drill_plans`: plans by name;
 * `drill_plan_runs`: every apply and rollback with the item versions before and after (the
 * plan's audit trail, and what a rollback restores).
 */
export const drill: Migration = {
  version: 17,
  name: 'drill',
  sql: `
    CREATE TABLE peak.drill_reports (
      boot        text PRIMARY KEY,
      app         text NOT NULL,
      instance_id text NOT NULL,
      service     text,
      tags        text[] NOT NULL DEFAULT '{}',
      active      jsonb NOT NULL DEFAULT '[]',
      ended       jsonb NOT NULL DEFAULT '[]',
      reported_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX drill_reports_app ON peak.drill_reports (app, reported_at);
    CREATE TABLE peak.drill_plans (
      name        text PRIMARY KEY,
      app         text NOT NULL,
      spec        jsonb NOT NULL,
      updated_by  text NOT NULL,
      updated_at  timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE peak.drill_plan_runs (
      id          bigserial PRIMARY KEY,
      plan        text NOT NULL,
      app         text NOT NULL,
      action      text NOT NULL CHECK (action IN ('apply', 'rollback')),
      items       jsonb NOT NULL,
      actor       text NOT NULL,
      source      text NOT NULL,
      comment     text NOT NULL DEFAULT '',
      at          timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX drill_plan_runs_plan ON peak.drill_plan_runs (plan, id);
  `,
};
