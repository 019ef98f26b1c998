/**
 * The one interface through which the host (`src/server/`) knows a subsystem's
 * control-plane half, Fastify-plugin style. A subsystem's `server/index.ts` exports one
 * {@link PeakModule}; `modules.ts` lists them; the host runs every module's migrations in
 * version order, then registers every module's routes on the shared HTTP lifecycle (auth,
 * validation, errors: see `http-api.ts`). Background workers and shutdown ride on the
 * Fastify app's hooks, in one fixed order for every module:
 *
 *   - `onReady`: start workers (hubs, relays, sweepers, evaluators); the node is not
 *     listening yet, so a worker that fails to start fails the start;
 *   - `preClose`: stop taking work (end long polls and streams, stop hubs), in-flight
 *     requests still finish;
 *   - `onClose`: release what the module holds (leader locks, timers) once the HTTP server
 *     has drained; the pool closes after every module's `onClose`.
 *
 * A module that needs something of a subsystem it may not import (telemetry reads mq's
 * consumer backlog, and sits below mq) is a factory that takes it as a small interface it
 * declares itself; `modules.ts` passes the other subsystem's implementation in
 * (`telemetryModule({ mqBacklog: openBacklogReader })`).
 */
import type { ApiModule } from './http-api.js';
import type { Migration } from './migrator.js';

/** A subsystem's control-plane half, as the host sees it. */
export interface PeakModule {
  /** The subsystem's name (`mq`, `registry`, ...), for logs and the docs. */
  readonly name: string;
  /**
   * Its migrations of schema `peak`. Versions are global and strictly increasing across
   * modules (the host refuses a duplicate), so a new migration takes the next free number.
   */
  readonly migrations: readonly Migration[];
  /** Registers its routes, and its workers' start and stop as the hooks above. */
  readonly routes: ApiModule;
}
