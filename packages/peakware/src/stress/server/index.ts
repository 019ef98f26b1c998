/**
 * The stress module's control-plane half: runs and their reports, agents, capacity figures,
 * as one {@link PeakModule}; see ../README.md. It reads a run's messages in real topics
 * through the mq module's counter, handed in by the host (`modules.ts`).
 */
import type { PeakModule } from '../../server/peak-module.js';
import { stress } from './migrations/0016-stress.js';
import { type StressMessageCounter, stressRoutes } from './stress-routes.js';

export type { RunControl, StressRunRecord, StressRunSummary } from './stress-store.js';
export type { StressMessageCounter };

/** The stress module, given the mq module's counter of a run's messages in real topics. */
export function stressModule(deps: { messages: StressMessageCounter }): PeakModule {
  return { name: 'stress', migrations: [stress], routes: stressRoutes(deps) };
}
