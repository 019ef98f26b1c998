/**
 * The transaction coordinator's control-plane half: global transactions and their branch
 * timelines in PostgreSQL, driven by any node under a lease, recovered by any node when a
 * lease runs out, as one {@link PeakModule}; see ../README.md.
 */
import type { PeakModule } from '../../server/peak-module.js';
import { txn } from './migrations/0015-txn.js';
import { txnApp } from './migrations/0026-txn-app.js';
import { txnTimeline } from './migrations/0027-txn-timeline.js';
import { txnActiveIndex } from './migrations/0029-txn-active-index.js';
import type { InstanceLister } from './polled-registry.js';
import { txnRoutes } from './txn-routes.js';

/** The txn module; `instances` reads a service key's live instances (the registry's store). */
export function txnModule(deps: { instances: InstanceLister }): PeakModule {
  return {
    name: 'txn',
    migrations: [txn, txnApp, txnTimeline, txnActiveIndex],
    routes: txnRoutes(deps),
  };
}
