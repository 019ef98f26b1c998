/**
 * Guard's control-plane half: the cluster token server (one leader across nodes) and the
 * per-instance report store, with their HTTP routes, as one {@link PeakModule}. It needs no
 * tables of its own; see ../README.md.
 */
import type { PeakModule } from '../../server/peak-module.js';
import { guardRoutes } from './guard-routes.js';

/** The guard module: cluster tokens and reports. */
export const guardModule: PeakModule = {
  name: 'guard',
  migrations: [],
  routes: guardRoutes,
};
