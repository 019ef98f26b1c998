/**
 * The scale module: supervisors' reports and orders, the scaling evaluator and releases,
 * as one {@link PeakModule}; see ../README.md.
 */
import type { PeakModule } from '../../server/peak-module.js';
import { scale } from './migrations/0023-scale.js';
import { supervisorRoutes } from './scale-routes.js';

export type { DecisionAction, ScaleDecision } from './decision-store.js';
export type { ScaleStatus, ServiceStatus, SupervisorStatus } from './supervisor-store.js';

/** The scale module. */
export function scaleModule(): PeakModule {
  return {
    name: 'scale',
    migrations: [scale],
    routes: supervisorRoutes(async () => []),
  };
}
