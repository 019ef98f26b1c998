/**
 * Test support: several embedded PostgreSQL instances at once (each its own data folder
 * under /tmp), standing in for several database servers. Start once per test file;
 * `stop()` removes every folder.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../src/core/logger.js';
import { EmbeddedPostgres, type PostgresEndpoint } from '../../src/server/embedded-postgres.js';

/** A set of running PostgreSQL instances. */
export interface PostgresCluster {
  endpoints: PostgresEndpoint[];
  /** A connection URL for instance `i`, optionally to another database on it. */
  url(i: number, database?: string): string;
  stop(): Promise<void>;
}

/** Starts `count` embedded PostgreSQL instances in parallel. */
export async function startPostgresCluster(count: number): Promise<PostgresCluster> {
  const logger = createLogger({ level: 'warn' });
  const dirs: string[] = [];
  const instances: EmbeddedPostgres[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const dir = await mkdtemp(path.join(os.tmpdir(), `peak-data-pg${i}-`));
      dirs.push(dir);
      instances.push(new EmbeddedPostgres({ dataDir: dir, logger }));
    }
    const endpoints = await Promise.all(instances.map((pg) => pg.start()));
    return {
      endpoints,
      url(i, database) {
        const e = endpoints[i]!;
        return `postgres://${encodeURIComponent(e.user)}:${encodeURIComponent(e.password)}@${e.host}:${e.port}/${database ?? e.database}`;
      },
      async stop() {
        await Promise.allSettled(instances.map((pg) => pg.stop()));
        await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
      },
    };
  } catch (err) {
    await Promise.allSettled(instances.map((pg) => pg.stop()));
    await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
    throw err;
  }
}
