/**
 * The registry's control-plane half: instances with leases in PostgreSQL, the push hub
 * (LISTEN/NOTIFY → SSE) and the HTTP routes, as one {@link PeakModule}; see ../README.md.
 */
import type { PeakModule } from '../../server/peak-module.js';
import { registry } from './migrations/0002-registry.js';
import { registryRoutes } from './registry-routes.js';

/** The registry module: register, renew, watch, deregister. */
export const registryModule: PeakModule = {
  name: 'registry',
  migrations: [registry],
  routes: registryRoutes,
};

/** The live instances of a service key in the registry's store (for the txn coordinator). */
export { listAll, listInstances, patchInstance } from './registry-store.js';
