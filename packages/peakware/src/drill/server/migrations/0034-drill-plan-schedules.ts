import type { Migration } from '../../../server/migrator.js';

/**
 * Scheduled plan runs: a plan's apply (or rollback) due at a time, run once by whichever
 * control-plane node claims it first (`state` moves pending → running → done | failed;
 * cancelled only from pending). A running row whose node died is claimed again after a
 * minute; the plan's own "applied already" check keeps that from applying twice.
 */
export const drillPlanSchedules: Migration = {
  version: 34,
  name: 'drill-plan-schedules',
  sql: `
    CREATE TABLE peak.drill_plan_schedules (
      id          bigserial PRIMARY KEY,
      plan        text NOT NULL,
      action      text NOT NULL CHECK (action IN ('apply', 'rollback')),
      due_at      timestamptz NOT NULL,
      state       text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled')),
      author      text NOT NULL,
      source      text NOT NULL,
      comment     text NOT NULL DEFAULT '',
      created_at  timestamptz NOT NULL DEFAULT now(),
      claimed_by  text,
      claimed_at  timestamptz,
      finished_at timestamptz,
      run_id      bigint,
      error       text
    );
    CREATE INDEX drill_plan_schedules_due ON peak.drill_plan_schedules (due_at)
      WHERE state IN ('pending', 'running');
    CREATE INDEX drill_plan_schedules_plan ON peak.drill_plan_schedules (plan, id);
  `,
};
