import type { Migration } from '../../../server/migrator.js';

/**
 * A transaction's branch timeline folded into its row: the branch operations that
 * succeeded at once, written with the transaction's end in the same UPDATE instead of one
 * `txn_branches` row each (a two-branch saga wrote two rows and their index entries).
 * Failed, retried and slow operations, and those of a transaction handed to recovery,
 * still get their rows; `peak txn show` merges both.
 */
export const txnTimeline: Migration = {
  version: 27,
  name: 'txn-timeline',
  sql: `ALTER TABLE peak.txn_globals ADD COLUMN timeline jsonb;`,
};
