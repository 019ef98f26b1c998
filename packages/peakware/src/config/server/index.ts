/**
 * The config center's control-plane half: versioned items in PostgreSQL, the push hub and
 * the HTTP routes (publish, gray, promote, rollback, audit), as one {@link PeakModule};
 * see ../README.md.
 */
import type pg from 'pg';
import type { PeakModule } from '../../server/peak-module.js';
import { configRoutes } from './config-routes.js';
import { getItem, type ItemRef, publish, publishBatch } from './config-store.js';
import { config } from './migrations/0004-config.js';

/** The config module. */
export const configModule: PeakModule = {
  name: 'config',
  migrations: [config],
  routes: configRoutes,
};

/**
 * The store as another module's server half may use it (handed over in `modules.ts`):
 * read an item, publish one, publish a batch in one transaction.
 */
export const configStorePort = {
  async get(pool: pg.Pool, ref: ItemRef) {
    const found = await getItem(pool, ref);
    return found === undefined
      ? undefined
      : {
          version: found.item.version,
          format: found.item.format,
          value: found.item.value,
          schema: found.item.schema,
        };
  },
  publish,
  publishBatch,
};
