/**
 * The drill module: agents' reports, fault injection over the config center (the item
 * `drill/faults` of each app) and plans applied and rolled back through it, as one
 * {@link PeakModule}; see ../README.md. The config center's store is passed in
 * (`modules.ts`), as a subsystem's server half does not import another's.
 */
import type { PeakModule } from '../../server/peak-module.js';
import type { ConfigPort } from './config-port.js';
import { drillRoutes } from './drill-routes.js';
import { drill } from './migrations/0017-drill.js';
import { drillPlanSchedules } from './migrations/0034-drill-plan-schedules.js';
import { drillPlanScheduleRepeats } from './migrations/0035-drill-plan-schedule-repeats.js';

export type { ConfigPort } from './config-port.js';
export type { DrillStatus, InstanceStatus } from './fault-store.js';
export type { PlanSchedule, ScheduleRequest } from './plan-schedules.js';
export type { PlanDiffEntry, PlanRun, PlanView, RunItem } from './plan-store.js';

/** The drill module, over the config center's store. */
export function drillModule(deps: { config: ConfigPort }): PeakModule {
  return {
    name: 'drill',
    migrations: [drill, drillPlanSchedules, drillPlanScheduleRepeats],
    routes: drillRoutes(deps.config),
  };
}
