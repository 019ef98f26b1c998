/**
 * `peakware/server`: the control plane (`peak server`) as a library: start a node on the
 * embedded PostgreSQL or an external one, stop it gracefully. `EmbeddedPostgres` runs more
 * real PostgreSQL instances from the same binaries (a laptop stand-in for shard servers).
 */

export { isLoopbackHost } from '../core/loopback.js';
export { DEFAULT_DATA_DIR, DEFAULT_PORT } from './defaults.js';
export {
  EmbeddedPostgres,
  type EmbeddedPostgresOptions,
  type PostgresEndpoint,
} from './embedded-postgres.js';
export type { ApiApp, ApiContext, ApiModule, RouteAuthConfig, RouteEntry } from './http-api.js';
export type { Migration } from './migrator.js';
export {
  PeakServer,
  type PeakServerInfo,
  type PeakServerOptions,
  type ServerTlsOptions,
} from './peak-server.js';
export type { RouteSchema } from './route-schema.js';
export {
  resolveServerSettings,
  type ServerSettings,
  type ServerSettingsOptions,
  serverSettingsFromEnv,
} from './server-settings.js';
export { type StoppableAtOnce, stopAtOnce } from './stop-at-once.js';
