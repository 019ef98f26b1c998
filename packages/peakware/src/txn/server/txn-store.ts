/**
 * The coordinator's reads and claims on `peak.txn_globals` / `peak.txn_branches`: one
 * transaction with its timeline, the list, recovery's claim of transactions whose lease ran
 * out, lease renewal, and the operator's retry and stop.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { BranchView, TxnKind, TxnStatus, TxnSummary, TxnView } from '../txn-types.js';
import type { TimelineEntry } from './txn-journal.js';

/** A global transaction's row as the driver needs it. */
export interface GlobalRow {
  gid: string;
  kind: TxnKind;
  status: TxnStatus;
  spec: unknown;
  reason: string | null;
  deadline: Date;
  recoveries: number;
  trace_id: string | null;
}

interface FullRow extends GlobalRow {
  app: string | null;
  owner: string | null;
  lease_until: Date | null;
  parked: boolean;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

interface BranchRow {
  gid: string;
  branch: string;
  op: BranchView['op'];
  status: BranchView['status'];
  attempts: number;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

/** The statuses of a transaction still in progress. */
export const ACTIVE = ['prepared', 'running', 'committing', 'aborting'];

/**
 * The same as an SQL list of literals, for the statements that find unfinished transactions
 * without a gid: with the statuses as a parameter, a generic plan cannot prove the partial
 * index's predicate (`txn_globals_due`, migration 29) and reads the whole table.
 */
export const ACTIVE_SQL = `(${ACTIVE.map((s) => `'${s}'`).join(', ')})`;

const COLUMNS = `gid, kind, status, spec, reason, app, owner, lease_until, deadline, recoveries, parked,
  trace_id, created_at, updated_at, finished_at`;

function summary(r: FullRow): TxnSummary {
  return {
    gid: r.gid,
    kind: r.kind,
    status: r.status,
    ...(r.reason === null ? {} : { reason: r.reason }),
    ...(r.app === null ? {} : { app: r.app }),
    ...(r.owner === null ? {} : { owner: r.owner }),
    ...(r.lease_until === null ? {} : { leaseUntil: r.lease_until.toISOString() }),
    deadline: r.deadline.toISOString(),
    recoveries: r.recoveries,
    parked: r.parked,
    ...(r.trace_id === null ? {} : { traceId: r.trace_id }),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    ...(r.finished_at === null ? {} : { finishedAt: r.finished_at.toISOString() }),
  };
}

function branchView(b: BranchRow): BranchView {
  return {
    branch: b.branch,
    op: b.op,
    status: b.status,
    attempts: b.attempts,
    ...(b.error === null ? {} : { error: b.error }),
    startedAt: b.started_at.toISOString(),
    ...(b.finished_at === null ? {} : { finishedAt: b.finished_at.toISOString() }),
  };
}

function entryView(e: TimelineEntry): BranchView {
  return {
    branch: e.branch,
    op: e.op,
    status: e.status,
    attempts: e.attempts,
    ...(e.error === null ? {} : { error: e.error }),
    startedAt: new Date(e.started).toISOString(),
    ...(e.finished === null ? {} : { finishedAt: new Date(e.finished).toISOString() }),
  };
}

/**
 * The timeline: `txn_branches` rows and the entries folded into the row at its end (see
 * txn-journal.ts), one per operation (an entry's end over a row that says running), oldest
 * first.
 */
function timeline(rows: BranchRow[], folded: TimelineEntry[] | null): BranchView[] {
  const byOp = new Map<string, BranchView>();
  for (const b of rows) byOp.set(`${b.branch}\u0000${b.op}`, branchView(b));
  for (const e of folded ?? []) {
    const key = `${e.branch}\u0000${e.op}`;
    const row = byOp.get(key);
    if (row === undefined || row.status === 'running') byOp.set(key, entryView(e));
  }
  return [...byOp.values()].sort(
    (a, b) =>
      a.startedAt.localeCompare(b.startedAt) ||
      a.branch.localeCompare(b.branch) ||
      a.op.localeCompare(b.op),
  );
}

/** One global transaction with its branch timeline (oldest first); PEAK_TXN_NOT_FOUND when absent. */
export async function getGlobal(pool: pg.Pool, gid: string): Promise<TxnView> {
  const res = await pool.query<FullRow & { timeline: TimelineEntry[] | null }>(
    `SELECT ${COLUMNS}, timeline FROM peak.txn_globals WHERE gid = $1`,
    [gid],
  );
  const row = res.rows[0];
  if (row === undefined) {
    throw new PeakError(
      ErrorCodes.TXN_NOT_FOUND,
      `no global transaction '${gid}'; see 'peak txn ls'`,
      {
        details: { gid },
      },
    );
  }
  const branches = await pool.query<BranchRow>(
    `SELECT * FROM peak.txn_branches WHERE gid = $1 ORDER BY started_at, branch, op`,
    [gid],
  );
  return { ...summary(row), spec: row.spec, branches: timeline(branches.rows, row.timeline) };
}

/** Filters of {@link listGlobals}. */
export interface ListFilter {
  status?: TxnStatus | 'active';
  kind?: TxnKind;
  limit: number;
}

/** The newest global transactions, optionally of one status (or every active one) and kind. */
export async function listGlobals(pool: pg.Pool, filter: ListFilter): Promise<TxnSummary[]> {
  const where: string[] = [];
  const args: unknown[] = [];
  if (filter.status === 'active') {
    where.push(`status IN ${ACTIVE_SQL}`);
  } else if (filter.status !== undefined) {
    args.push(filter.status);
    where.push(`status = $${args.length}`);
  }
  if (filter.kind !== undefined) {
    args.push(filter.kind);
    where.push(`kind = $${args.length}`);
  }
  args.push(filter.limit);
  const res = await pool.query<FullRow>(
    `SELECT ${COLUMNS} FROM peak.txn_globals ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
      ORDER BY created_at DESC LIMIT $${args.length}`,
    args,
  );
  return res.rows.map(summary);
}

/** Recovery's claim: $1 the node, $2 its lease (ms), $3 how many (exported for the test of its plan). */
export const CLAIM_DUE_SQL = `UPDATE peak.txn_globals g
        SET owner = $1, lease_until = now() + $2 * interval '1 millisecond',
            recoveries = g.recoveries + 1, updated_at = now()
       FROM (SELECT gid FROM peak.txn_globals
              WHERE status IN ${ACTIVE_SQL} AND NOT parked AND lease_until < now()
              ORDER BY lease_until LIMIT $3 FOR UPDATE SKIP LOCKED) due
      WHERE g.gid = due.gid
      RETURNING g.gid, g.kind, g.status, g.spec, g.reason, g.deadline, g.recoveries, g.trace_id`;

/**
 * Takes over up to `limit` active transactions whose lease ran out (their node died, or
 * gave up for now): this node owns them for `leaseMs`. One whose recoveries reached
 * `maxRecoveries` is parked instead, for an operator's `peak txn retry`.
 */
export async function claimDue(
  pool: pg.Pool,
  nodeId: string,
  leaseMs: number,
  limit: number,
  maxRecoveries: number,
): Promise<{ claimed: GlobalRow[]; parked: string[] }> {
  const parked = await pool.query<{ gid: string }>(
    `UPDATE peak.txn_globals SET parked = true, updated_at = now(),
            reason = coalesce(reason || '; ', '') || 'parked after ' || recoveries || ' recoveries'
      WHERE status IN ${ACTIVE_SQL} AND NOT parked AND lease_until < now() AND recoveries >= $1
      RETURNING gid`,
    [maxRecoveries],
  );
  const res = await pool.query<GlobalRow>(CLAIM_DUE_SQL, [nodeId, leaseMs, limit]);
  return { claimed: res.rows, parked: parked.rows.map((r) => r.gid) };
}

/** Branch operations recorded as succeeded for `gids` (`gid branch op` keys). */
export async function succeededOps(pool: pg.Pool, gids: string[]): Promise<Set<string>> {
  if (gids.length === 0) return new Set();
  const res = await pool.query<{ gid: string; branch: string; op: string }>(
    `SELECT gid, branch, op FROM peak.txn_branches WHERE gid = ANY($1) AND status = 'succeeded'`,
    [gids],
  );
  return new Set(res.rows.map((r) => `${r.gid} ${r.branch} ${r.op}`));
}

/**
 * Deletes finished global transactions started before `before` (epoch ms), and their
 * timeline rows, at most `limit` of them (the oldest first, through the `created_at`
 * index); returns how many. Rows another node is deleting are skipped, not waited for.
 */
export async function pruneFinished(pool: pg.Pool, before: number, limit: number): Promise<number> {
  const res = await pool.query(
    `WITH old AS (
       SELECT gid FROM peak.txn_globals
        WHERE created_at < to_timestamp($1 / 1000.0) AND status IN ('succeeded', 'failed')
        ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED),
     br AS (DELETE FROM peak.txn_branches b USING old WHERE b.gid = old.gid)
     DELETE FROM peak.txn_globals g USING old WHERE g.gid = old.gid`,
    [before, limit],
  );
  return res.rowCount ?? 0;
}

/** Extends this node's lease on `gids`; returns those it still owns. */
export async function renewLeases(
  pool: pg.Pool,
  nodeId: string,
  gids: string[],
  leaseMs: number,
): Promise<Set<string>> {
  if (gids.length === 0) return new Set();
  const res = await pool.query<{ gid: string }>(
    `UPDATE peak.txn_globals SET lease_until = now() + $3 * interval '1 millisecond'
      WHERE gid = ANY($2) AND owner = $1 AND status = ANY($4) RETURNING gid`,
    [nodeId, gids, leaseMs, ACTIVE],
  );
  return new Set(res.rows.map((r) => r.gid));
}

/** Hands a transaction back to recovery at once (a node giving up a drive for now). */
export async function releaseLease(pool: pg.Pool, nodeId: string, gid: string, delayMs: number) {
  await pool.query(
    `UPDATE peak.txn_globals SET lease_until = now() + $3 * interval '1 millisecond'
      WHERE gid = $1 AND owner = $2 AND status = ANY($4)`,
    [gid, nodeId, delayMs, ACTIVE],
  );
}

async function current(pool: pg.Pool, gid: string): Promise<FullRow> {
  const res = await pool.query<FullRow>(`SELECT ${COLUMNS} FROM peak.txn_globals WHERE gid = $1`, [
    gid,
  ]);
  const row = res.rows[0];
  if (row === undefined) {
    throw new PeakError(
      ErrorCodes.TXN_NOT_FOUND,
      `no global transaction '${gid}'; see 'peak txn ls'`,
      {
        details: { gid },
      },
    );
  }
  return row;
}

/**
 * `peak txn retry`: an active transaction (parked after its retry limit, or waiting for its
 * lease) is taken by the next recovery round at once, its recovery count reset.
 */
export async function retryGlobal(pool: pg.Pool, gid: string): Promise<TxnSummary> {
  const res = await pool.query<FullRow>(
    `UPDATE peak.txn_globals SET parked = false, recoveries = 0, lease_until = now(), owner = NULL,
            updated_at = now()
      WHERE gid = $1 AND status = ANY($2) RETURNING ${COLUMNS}`,
    [gid, ACTIVE],
  );
  const row = res.rows[0];
  if (row !== undefined) return summary(row);
  const now = await current(pool, gid);
  throw new PeakError(
    ErrorCodes.TXN_STATE,
    `global transaction ${gid} is ${now.status}: only an unfinished one can be retried`,
    { details: { gid, status: now.status } },
  );
}

/**
 * `peak txn stop`: a saga or TCC still running is rolled back (its compensations or cancels
 * run on the next recovery round, on whichever node takes it). One confirming, or a message
 * (decided by its local transaction), cannot be stopped.
 */
export async function stopGlobal(pool: pg.Pool, gid: string, who: string): Promise<TxnSummary> {
  const res = await pool.query<FullRow>(
    `UPDATE peak.txn_globals
        SET status = 'aborting', reason = 'stopped by ' || $2, owner = NULL, lease_until = now(),
            parked = false, recoveries = 0, updated_at = now()
      WHERE gid = $1 AND kind IN ('saga', 'tcc') AND status IN ('running', 'aborting')
      RETURNING ${COLUMNS}`,
    [gid, who],
  );
  const row = res.rows[0];
  if (row !== undefined) return summary(row);
  const now = await current(pool, gid);
  throw new PeakError(
    ErrorCodes.TXN_STATE,
    now.kind === 'msg'
      ? `global transaction ${gid} is a two-phase message: its local transaction decides it, it cannot be stopped`
      : `global transaction ${gid} is ${now.status}: only a running saga or TCC can be stopped (a committing one finishes its confirms)`,
    { details: { gid, status: now.status } },
  );
}
