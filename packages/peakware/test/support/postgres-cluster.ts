/**
 * Test support: several embedded PostgreSQL instances at once (each its own data folder
 * under /tmp), standing in for several database servers. Start once per test file;
 * `stop()` removes every folder.
 *
 * A test that times out can leave no PostgreSQL behind: every instance started (or still
 * starting) through here is stopped, and its folder removed, by a file-level `after` once
 * the file's tests are done (a test that timed out while its cluster was starting never got
 * the cluster to stop it, and the running postmaster would keep the test process alive),
 * and sent SIGQUIT (immediate shutdown) when the process exits with one still running.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { createLogger } from '../../src/core/logger.js';
import { EmbeddedPostgres, type PostgresEndpoint } from '../../src/server/embedded-postgres.js';
import { waitFor } from './wait.js';

/** A set of running PostgreSQL instances. */
export interface PostgresCluster {
  endpoints: PostgresEndpoint[];
  /** A connection URL for instance `i`, optionally to another database on it. */
  url(i: number, database?: string): string;
  /**
   * Kills instance `i`'s postmaster with SIGKILL (as `kill -9` would) and waits until it and
   * its backends (which notice its death and exit on their own) are gone.
   */
  kill(i: number): Promise<void>;
  /** Starts instance `i` again on its data folder (a new port: read `url(i)` again). */
  restart(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** Whether process `pid` still runs (a zombie, never reaped in some containers, does not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Clusters started or starting in this process and not stopped yet: what the sweep stops. */
const unstopped = new Set<{ started: Promise<unknown>; stop: () => Promise<void> }>();
const instances = new Set<EmbeddedPostgres>();

after(async () => {
  for (const cluster of [...unstopped]) {
    await cluster.started.catch(() => undefined);
    await cluster.stop();
  }
});
process.once('exit', () => {
  for (const pg of instances) {
    try {
      if (pg.pid !== undefined) process.kill(pg.pid, 'SIGQUIT');
    } catch {
      // already gone
    }
  }
});

/** Starts `count` embedded PostgreSQL instances in parallel. */
export async function startPostgresCluster(count: number): Promise<PostgresCluster> {
  const logger = createLogger({ level: 'warn' });
  const dirs: string[] = [];
  const mine: EmbeddedPostgres[] = [];
  let stopping: Promise<void> | undefined;
  const stopAll = () => {
    stopping ??= (async () => {
      await Promise.allSettled(mine.map((pg) => pg.stop()));
      for (const pg of mine) instances.delete(pg);
      await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
      unstopped.delete(tracked);
    })();
    return stopping;
  };
  const tracked = { started: Promise.resolve() as Promise<unknown>, stop: stopAll };
  unstopped.add(tracked);
  const start = (async () => {
    for (let i = 0; i < count; i++) {
      const dir = await mkdtemp(path.join(os.tmpdir(), `peak-data-pg${i}-`));
      dirs.push(dir);
      const pg = new EmbeddedPostgres({ dataDir: dir, logger });
      mine.push(pg);
      instances.add(pg);
    }
    return Promise.all(mine.map((pg) => pg.start()));
  })();
  tracked.started = start;
  let endpoints: PostgresEndpoint[];
  try {
    endpoints = await start;
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    endpoints,
    url(i, database) {
      const e = endpoints[i]!;
      return `postgres://${encodeURIComponent(e.user)}:${encodeURIComponent(e.password)}@${e.host}:${e.port}/${database ?? e.database}`;
    },
    async kill(i) {
      const pid = mine[i]!.pid;
      if (pid === undefined) return;
      // Its backends too: one still up could answer a query after the postmaster died.
      const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => ''))
        .split(' ')
        .filter((x) => x.trim().length > 0)
        .map(Number);
      process.kill(pid, 'SIGKILL');
      await waitFor(`postmaster ${pid} and its backends to exit`, () =>
        [pid, ...children].every((p) => !alive(p)),
      );
    },
    async restart(i) {
      // Until the killed postmaster's backends have exited, the new one refuses to start
      // (its shared memory is still in use): try again a few times.
      for (let attempt = 1; ; attempt++) {
        try {
          endpoints[i] = await mine[i]!.start();
          return;
        } catch (err) {
          if (attempt >= 10) throw err;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },
    stop: stopAll,
  };
}
