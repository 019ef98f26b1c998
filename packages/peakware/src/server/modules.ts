/**
 * The subsystems `peak server` hosts, in registration order. This file is the host's only
 * import of subsystem code: everything else in `src/server/` is the host's own (start-up,
 * embedded PostgreSQL, pool, migrator, HTTP core, leader locks).
 */
import { configModule } from '../config/server/index.js';
import { guardModule } from '../guard/server/index.js';
import { mqModule } from '../mq/server/index.js';
import { registryModule } from '../registry/server/index.js';
import { telemetryModule } from '../telemetry/server/index.js';
import type { PeakModule } from './peak-module.js';

/** Every built-in module; the host registers their routes in this order. */
export const builtinModules: readonly PeakModule[] = [
  registryModule,
  guardModule,
  mqModule,
  configModule,
  telemetryModule,
];
