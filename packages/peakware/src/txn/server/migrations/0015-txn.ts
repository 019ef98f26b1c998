import type { Migration } from '../../../server/migrator.js';

/**
 * The transaction coordinator's state: one row per global transaction (its definition, its
 * status, the node driving it and until when that node's lease runs) and one row per
 * branch operation (the timeline `peak txn show` prints). Recovery looks for active
 * transactions whose lease ran out (`txn_globals_due`).
 */
export const txn: Migration = {
  version: 15,
  name: 'txn',
  sql: `
    CREATE TABLE peak.txn_globals (
      gid         text PRIMARY KEY,
      kind        text NOT NULL CHECK (kind IN ('saga', 'tcc', 'msg')),
      status      text NOT NULL CHECK (status IN ('prepared', 'running', 'committing', 'aborting', 'succeeded', 'failed')),
      spec        jsonb NOT NULL,
      reason      text,
      owner       text,
      lease_until timestamptz,
      deadline    timestamptz NOT NULL,
      recoveries  integer NOT NULL DEFAULT 0,
      parked      boolean NOT NULL DEFAULT false,
      trace_id    text,
      created_at  timestamptz NOT NULL DEFAULT now(),
      updated_at  timestamptz NOT NULL DEFAULT now(),
      finished_at timestamptz
    );
    CREATE INDEX txn_globals_due ON peak.txn_globals (lease_until)
      WHERE status IN ('prepared', 'running', 'committing', 'aborting') AND NOT parked;
    CREATE INDEX txn_globals_created ON peak.txn_globals (created_at DESC);
    CREATE TABLE peak.txn_branches (
      gid         text NOT NULL,
      branch      text NOT NULL,
      op          text NOT NULL,
      status      text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
      attempts    integer NOT NULL DEFAULT 1,
      error       text,
      started_at  timestamptz NOT NULL,
      finished_at timestamptz,
      PRIMARY KEY (gid, branch, op)
    );
  `,
};
