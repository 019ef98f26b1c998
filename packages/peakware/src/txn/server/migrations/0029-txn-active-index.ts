/**
 * The index of unfinished transactions no longer leaves parked ones out: one index serves
 * recovery's claim (`lease_until` of the unfinished, not parked: parked rows are rare and
 * filtered) and the listing of every unfinished one (`peak txn ls --status active`, the
 * console's overview), which read the whole table before (test: txn-branches, "store:
 * listing the unfinished and recovery's claim ...").
 * The statements name the statuses as literals (txn-store.ts `ACTIVE_SQL`), so a generic
 * plan still proves the predicate and uses the index. No column a transaction's end
 * changes is added: the hot path writes the same index entries as before.
 */
import type { Migration } from '../../../server/migrator.js';

export const txnActiveIndex: Migration = {
  version: 29,
  name: 'txn-active-index',
  sql: `
    DROP INDEX peak.txn_globals_due;
    CREATE INDEX txn_globals_due ON peak.txn_globals (lease_until)
      WHERE status IN ('prepared', 'running', 'committing', 'aborting');
  `,
};
