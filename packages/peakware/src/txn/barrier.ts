/**
 * The sub-transaction barrier (DTM's): one table in the branch's own database, and a
 * unique `(gid, branch, op)` insert in the same local transaction as the branch's work.
 *
 * - **duplicates**: a second `action`/`try`/`confirm` of one branch finds its row and does
 *   nothing (the first one's effect stands);
 * - **empty compensation**: a `compensate`/`cancel` first inserts the row of the operation
 *   it undoes; when that insert succeeds the operation never ran, so there is nothing to
 *   undo and the handler is skipped;
 * - **hanging try**: that same row makes a late `action`/`try` (one that arrives after its
 *   cancel) a duplicate, so it never reserves what nobody will release;
 * - **two-phase messages**: the local transaction inserts `(gid, '00', 'msg')`; the
 *   check-back inserts the same key with reason `rollback`, which waits on the unique index
 *   while the local transaction is open, and then tells committed from rolled back for sure.
 *
 * The BEGIN and the barrier insert go in one round trip (a simple query of two
 * statements), so a barrier adds one statement, not a round trip, to the branch's work.
 * `installBarrier` (or `peak txn barrier install --db <url>`) creates the table.
 */
import pg from 'pg';
import { currentContext } from '../core/context.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { type TxnBranch, txnBranch } from './branch-context.js';
import type { BranchOp } from './txn-types.js';

/** The barrier table, schema-qualified. */
export const BARRIER_TABLE = 'peak_txn.barrier';

/** What a barrier needs of a database: a `pg.Pool` (or anything handing out its clients). */
export interface BarrierDb {
  connect(): Promise<pg.PoolClient>;
}

/** The branch name two-phase messages use for their local transaction's row. */
export const MSG_BRANCH = '00';

/** The operation a compensation or cancel undoes: its barrier row is inserted too. */
export const BARRIER_ORIGIN: Partial<Record<BranchOp, BranchOp>> = {
  compensate: 'action',
  cancel: 'try',
};

/**
 * Creates the barrier table in the branch's database (idempotent). Its age index, for
 * {@link pruneBarrier}, is a BRIN: rows arrive in `created_at` order, so a block range's
 * summary is all a range delete needs, and an insert adds no btree entry (a btree there
 * cost every barrier row a second index insert). A table made before keeps its btree.
 */
export async function installBarrier(db: pg.Pool | pg.Client): Promise<void> {
  await db.query(`CREATE SCHEMA IF NOT EXISTS peak_txn;
    CREATE TABLE IF NOT EXISTS ${BARRIER_TABLE} (
      gid        text NOT NULL,
      branch     text NOT NULL,
      op         text NOT NULL,
      reason     text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (gid, branch, op)
    );
    CREATE INDEX IF NOT EXISTS barrier_created ON ${BARRIER_TABLE} USING brin (created_at);`);
}

/** Deletes barrier rows older than `olderThanMs` (their transactions ended long ago); returns how many. */
export async function pruneBarrier(db: pg.Pool, olderThanMs: number): Promise<number> {
  const res = await db.query(
    `DELETE FROM ${BARRIER_TABLE} WHERE created_at < now() - $1 * interval '1 millisecond'`,
    [olderThanMs],
  );
  return res.rowCount ?? 0;
}

/** One barrier row as SQL values, every field escaped. */
export function barrierRow(gid: string, branch: string, op: string, reason: string): string {
  return `(${pg.escapeLiteral(gid)}, ${pg.escapeLiteral(branch)}, ${pg.escapeLiteral(op)}, ${pg.escapeLiteral(reason)})`;
}

/**
 * Runs `fn` in a local transaction on `db` guarded by the barrier row of `branch` (default:
 * the branch of the current call). Returns what `fn` returned, or undefined when the
 * barrier filtered the call (a duplicate, an empty compensation or a hanging try), in
 * which case `fn` did not run. `fn` throwing rolls everything back, the barrier row too, so
 * the coordinator's retry runs it again.
 */
export async function barrier<T>(
  db: BarrierDb,
  branch: TxnBranch | undefined,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T | undefined> {
  const b = branch ?? txnBranch(currentContext());
  const client = await db.connect();
  // A connection that drops while `fn` waits on other work (a PostgreSQL restart) emits
  // 'error' on the client: not a crash; the next statement reports it and it is discarded.
  let lost: Error | undefined;
  const onError = (err: Error) => {
    lost ??= err;
  };
  client.on('error', onError);
  let open = false;
  try {
    const origin = BARRIER_ORIGIN[b.op];
    const rows =
      origin === undefined
        ? barrierRow(b.gid, b.branch, b.op, b.op)
        : `${barrierRow(b.gid, b.branch, origin, b.op)}, ${barrierRow(b.gid, b.branch, b.op, b.op)}`;
    open = true;
    const results = (await client.query(
      `BEGIN; INSERT INTO ${BARRIER_TABLE} (gid, branch, op, reason) VALUES ${rows} ON CONFLICT DO NOTHING RETURNING op`,
    )) as unknown as pg.QueryResult<{ op: string }>[];
    const inserted = new Set(results[1]!.rows.map((r) => r.op));
    if (!inserted.has(b.op)) {
      // A duplicate (or, for an action or try, a call arriving after its cancel).
      await client.query('ROLLBACK');
      open = false;
      if (b.op === 'msg') {
        throw new PeakError(
          ErrorCodes.TXN_STATE,
          `global transaction ${b.gid}: its message was already decided (rolled back by the check-back, or committed before); the local transaction was not run`,
          { details: { gid: b.gid } },
        );
      }
      return undefined;
    }
    if (origin !== undefined && inserted.has(origin)) {
      // Empty compensation: the operation it undoes never ran; keep both rows so a late
      // one is refused as a duplicate.
      await client.query('COMMIT');
      open = false;
      return undefined;
    }
    const value = await fn(client);
    await client.query('COMMIT');
    open = false;
    return value;
  } catch (err) {
    if (open) await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.off('error', onError);
    client.release(lost);
  }
}

/**
 * The check-back of a two-phase message: whether the local transaction of `gid` committed.
 * When it has not (yet), inserts the `rollback` row, which waits for a local transaction
 * still open and makes one that has not started fail, so the answer is final either way.
 */
export async function checkPrepared(
  db: pg.Pool,
  gid: string,
): Promise<{ status: 'committed' | 'rolledback' }> {
  const ins = await db.query(
    `INSERT INTO ${BARRIER_TABLE} (gid, branch, op, reason) VALUES ($1, $2, 'msg', 'rollback')
     ON CONFLICT DO NOTHING RETURNING op`,
    [gid, MSG_BRANCH],
  );
  if ((ins.rowCount ?? 0) > 0) return { status: 'rolledback' };
  const res = await db.query<{ reason: string }>(
    `SELECT reason FROM ${BARRIER_TABLE} WHERE gid = $1 AND branch = $2 AND op = 'msg'`,
    [gid, MSG_BRANCH],
  );
  return { status: res.rows[0]?.reason === 'rollback' ? 'rolledback' : 'committed' };
}
