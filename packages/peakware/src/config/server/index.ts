/**
 * The config center's control-plane half: versioned items in PostgreSQL, the push hub and
 * the HTTP routes (publish, gray, promote, rollback, audit), as one {@link PeakModule};
 * see ../README.md.
 */
import type { PeakModule } from '../../server/peak-module.js';
import { configRoutes } from './config-routes.js';
import { config } from './migrations/0004-config.js';

/** The config module. */
export const configModule: PeakModule = {
  name: 'config',
  migrations: [config],
  routes: configRoutes,
};
