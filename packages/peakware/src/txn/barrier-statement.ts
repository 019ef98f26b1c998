/**
 * The barrier and a branch's work in one statement, so one round trip: for a branch whose
 * whole work is one `INSERT`/`UPDATE`/`DELETE`, the barrier row's insert goes in a CTE of
 * that statement and gates it, and the statement commits on its own (no BEGIN, no COMMIT).
 * Three round trips to the branch's database become one; the rules are {@link barrier}'s
 * (duplicates, empty compensations and hanging tries are filtered, the work and the row
 * commit or roll back together).
 *
 * ```ts
 * debit: (input) => barrierStatement(db, undefined,
 *   (gate) => `UPDATE accounts SET balance = balance - $2 WHERE id = $1 AND ${gate} RETURNING id`,
 *   [input.account, input.amount]),
 * ```
 */
import pg from 'pg';
import { currentContext } from '../core/context.js';
import { ErrorCodes, PeakError } from '../core/errors.js';
import { BARRIER_ORIGIN, BARRIER_TABLE, barrierRow } from './barrier.js';
import { type TxnBranch, txnBranch } from './branch-context.js';

/** What {@link barrierStatement} needs of a database: a `pg.Pool` (or a client). */
export interface BarrierQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** What a gated statement did: whether the barrier let it run, and its RETURNING rows. */
export interface GatedResult<R> {
  /** False when the barrier filtered the call (a duplicate, an empty compensation, a hanging try). */
  ran: boolean;
  /** The rows of the statement's RETURNING clause, as JSON (none when it did not run). */
  rows: R[];
}

/**
 * Runs one data-modifying statement guarded by the barrier row of `branch` (default: the
 * branch of the current call), in one round trip. `statement(gate)` returns the SQL: an
 * `INSERT ... SELECT`, `UPDATE` or `DELETE` that puts the boolean SQL expression `gate` in
 * its `WHERE` and ends with a `RETURNING` clause; its parameters are `values` ($1, $2, ...).
 * A branch that needs several statements, or code between them, uses {@link barrier}.
 * Two-phase messages (op `msg`) are refused (PEAK_USAGE): their local transaction is
 * {@link PreparedMessage.run}'s.
 */
export async function barrierStatement<R = Record<string, unknown>>(
  db: BarrierQueryable,
  branch: TxnBranch | undefined,
  statement: (gate: string) => string,
  values: unknown[] = [],
): Promise<GatedResult<R>> {
  const b = branch ?? txnBranch(currentContext());
  if (b.op === 'msg') {
    throw new PeakError(
      ErrorCodes.USAGE,
      "barrierStatement does not run a two-phase message's local transaction: use PreparedMessage.run",
    );
  }
  const origin = BARRIER_ORIGIN[b.op];
  const rows =
    origin === undefined
      ? barrierRow(b.gid, b.branch, b.op, b.op)
      : `${barrierRow(b.gid, b.branch, origin, b.op)}, ${barrierRow(b.gid, b.branch, b.op, b.op)}`;
  // Runs only when this call inserted its own row and (for an undo) not the row of the
  // operation it undoes: that insert succeeding means the operation never ran.
  const gate =
    origin === undefined
      ? '(EXISTS (SELECT 1 FROM peak_barrier))'
      : `(EXISTS (SELECT 1 FROM peak_barrier WHERE op = ${pg.escapeLiteral(b.op)}) AND NOT EXISTS (SELECT 1 FROM peak_barrier WHERE op = ${pg.escapeLiteral(origin)}))`;
  const res = await db.query(
    `WITH peak_barrier AS (
       INSERT INTO ${BARRIER_TABLE} (gid, branch, op, reason) VALUES ${rows}
       ON CONFLICT DO NOTHING RETURNING op),
     peak_work AS (${statement(gate)})
     SELECT ${gate} AS ran, (SELECT coalesce(jsonb_agg(w), '[]'::jsonb) FROM peak_work w) AS rows`,
    values,
  );
  const out = res.rows[0] as { ran: boolean; rows: R[] };
  return { ran: out.ran, rows: out.ran ? out.rows : [] };
}
