import type { Migration } from '../../../server/migrator.js';

/**
 * The app that submitted each global transaction (its credential's app; null when an
 * operator's token submitted it, or it predates this column): only that app, or an
 * operator, may act on it by its gid.
 */
export const txnApp: Migration = {
  version: 26,
  name: 'txn-app',
  sql: `ALTER TABLE peak.txn_globals ADD COLUMN app text;`,
};
