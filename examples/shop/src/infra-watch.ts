/**
 * The chain's watch over what runs beside its services: redis-server (the cache tier and
 * the hot stock), the order shard's PostgreSQL (#2) and the second control-plane node. One
 * that dies mid-sale (a kill -9) is reported like a service process and started again in
 * the same place (same port, same data folder), so its clients' URLs reach it again: Redis
 * reloads its append-only file (every acknowledged deduction), PostgreSQL runs its crash
 * recovery (every committed order; nothing half-written).
 */
import type { Logger } from 'peakware/core';

/** What runs beside the services and is watched. */
export type InfraRole = 'redis' | 'order-shard-postgres' | 'control-plane';

/** A watched process: how to tell it ended, and how to start it again. */
export interface WatchedInfra {
  role: InfraRole;
  /** Its pid while it runs. */
  pid(): number | undefined;
  /** Resolves when the current process ends: how it ended (`killed by SIGKILL`, ...). */
  ended(): Promise<string>;
  /** Starts it again in the same place; resolves with the new pid. */
  restart(): Promise<number | undefined>;
}

/** A death seen by {@link watchInfra}. */
export interface InfraDeath {
  role: InfraRole;
  pid: number | undefined;
  how: string;
  restartedAs?: number;
}

/** How often a restart that failed is tried again, and how many times. */
const RETRY_MS = 1000;
const ATTEMPTS = 30;

/**
 * Watches `infra` until `stopping()` holds: each death is told to `onDeath` once the
 * restart succeeded (or failed for good), then the new process is watched.
 */
export function watchInfra(
  infra: WatchedInfra,
  options: { stopping: () => boolean; onDeath: (death: InfraDeath) => void; logger: Logger },
): void {
  const pid = infra.pid();
  infra.ended().then(async (how) => {
    if (options.stopping()) return;
    const death: InfraDeath = { role: infra.role, pid, how };
    for (let attempt = 1; attempt <= ATTEMPTS && !options.stopping(); attempt++) {
      try {
        death.restartedAs = await infra.restart();
        break;
      } catch (err) {
        // A killed postmaster's backends may hold its shared memory for a moment.
        options.logger.warn({ err: String(err), attempt }, `${infra.role} did not start again yet`);
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
    options.onDeath(death);
    if (death.restartedAs !== undefined && !options.stopping()) watchInfra(infra, options);
  });
}

/** Resolves when `pid` no longer runs (polled: the process may not be this one's child). */
export async function pidGone(pid: number | undefined, everyMs = 200): Promise<void> {
  if (pid === undefined) return;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, everyMs).unref());
  }
}
