import type { Migration } from '../../../server/migrator.js';

/**
 * Repeating plan schedules ("apply flash-sale at 20:00 every day, roll it back at 22:00"):
 * `every_ms` is the interval of a row that repeats, `series` the id of its series' first
 * row. Claiming a repeating row inserts the series' next occurrence in the same statement,
 * so a node that dies while running one does not end the series.
 */
export const drillPlanScheduleRepeats: Migration = {
  version: 35,
  name: 'drill-plan-schedule-repeats',
  sql: `
    ALTER TABLE peak.drill_plan_schedules
      ADD COLUMN every_ms bigint CHECK (every_ms IS NULL OR every_ms >= 60000),
      ADD COLUMN series bigint;
  `,
};
