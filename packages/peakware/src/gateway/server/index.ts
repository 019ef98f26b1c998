/**
 * The gateway's control-plane half: routes, apps, keys and subscriptions in PostgreSQL with
 * a rev-ordered change feed pushed to every `peak gateway` process, quota leases and nonce
 * claims, as one {@link PeakModule}; see ../README.md.
 */
import type { PeakModule } from '../../server/peak-module.js';
import { gatewayRoutes } from './gateway-routes.js';
import { gateway } from './migrations/0011-gateway.js';

/** The gateway module. */
export const gatewayModule: PeakModule = {
  name: 'gateway',
  migrations: [gateway],
  routes: gatewayRoutes,
};
