/**
 * The scale module: supervisors' reports and orders, scaling policies and their
 * evaluator, and releases and their runner (one node at a time), as one
 * {@link PeakModule}; see ../README.md. What it reads of config, registry, telemetry and
 * mq is passed in (`modules.ts`).
 */
import type { PeakModule } from '../../server/peak-module.js';
import { scale } from './migrations/0023-scale.js';
import { scaleReleases } from './migrations/0024-scale-releases.js';
import { policyRoutes } from './policy-routes.js';
import { releaseRoutes } from './release-routes.js';
import { releaseRunner } from './release-runner.js';
import { grayGroups } from './release-store.js';
import type { ScaleModuleDeps } from './scale-ports.js';
import { supervisorRoutes } from './scale-routes.js';
import { scaleWorker } from './scale-worker.js';

export type { DecisionAction, ScaleDecision } from './decision-store.js';
export type { ReleaseEvent, ReleaseState, ReleaseView } from './release-store.js';
export type { ScaleModuleDeps } from './scale-ports.js';
export type { ScaleStatus, ServiceStatus, SupervisorStatus } from './supervisor-store.js';

/** The scale module, over what it reads of config, telemetry and mq. */
export function scaleModule(deps: ScaleModuleDeps): PeakModule {
  const routes = [
    supervisorRoutes(grayGroups),
    policyRoutes(deps.config),
    releaseRoutes(deps),
    scaleWorker(deps, [releaseRunner(deps)]),
  ];
  return {
    name: 'scale',
    migrations: [scale, scaleReleases],
    routes: (app, ctx) => {
      for (const r of routes) r(app, ctx);
    },
  };
}
