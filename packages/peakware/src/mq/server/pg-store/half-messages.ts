/**
 * Half messages (transactional sends by half message): rows of kind `half` in the pending
 * table, invisible until the producer commits (they become outbox rows, due now) or rolls
 * back (deleted); unresolved ones are handed back for a check-back every interval.
 */
import type pg from 'pg';
import type { PendingInput, PendingRow } from '../message-records.js';
import { PENDING_COLUMNS, type PgPendingTable } from './pending-table.js';

/** Half messages in the pending table. */
export class PgHalfMessages {
  readonly #pool: pg.Pool;
  readonly #pending: PgPendingTable;

  constructor(pool: pg.Pool, pending: PgPendingTable) {
    this.#pool = pool;
    this.#pending = pending;
  }

  /** Stores half messages, first checked back at their `deliverAt`. */
  async addHalves(items: readonly PendingInput[]): Promise<void> {
    await this.#pending.addPending(this.#pool, 'half', items);
  }

  /**
   * Commits several half messages in one statement (one WAL flush for all; see
   * core/group-commit.ts). One result per id, in order: false for an id that is not a waiting
   * half message (and for a repeat of an id already committed earlier in the list).
   */
  async commitHalves(ids: readonly string[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.#pool.query<{ id: string }>(
      `WITH c AS (
         UPDATE peak.mq_pending SET kind = 'outbox', deliver_at = now()
          WHERE msg_id = ANY($1::bigint[]) AND kind = 'half'
          RETURNING msg_id::text AS id)
       SELECT id, pg_notify('peak_mq_pending', '') FROM c`,
      [ids],
    );
    const committed = new Set(rows.map((r) => r.id));
    return ids.map((id) => committed.delete(id));
  }

  /** Rolls a half message back: deleted, never delivered. False when unknown. */
  async rollbackHalf(id: string): Promise<boolean> {
    const r = await this.#pool.query(
      "DELETE FROM peak.mq_pending WHERE msg_id = $1 AND kind = 'half'",
      [id],
    );
    return r.rowCount === 1;
  }

  /**
   * Half messages of a producer group whose check time has come: each is pushed back by
   * `intervalMs` and its check count raised, then returned for the producer to answer.
   */
  async dueChecks(producerGroup: string, limit: number, intervalMs: number): Promise<PendingRow[]> {
    const { rows } = await this.#pool.query<PendingRow>(
      `UPDATE peak.mq_pending SET deliver_at = now() + make_interval(secs => $3::float8 / 1000),
              check_count = check_count + 1
        WHERE seq IN (SELECT seq FROM peak.mq_pending
                       WHERE kind = 'half' AND producer_group = $1 AND deliver_at <= now()
                       ORDER BY deliver_at LIMIT $2 FOR UPDATE SKIP LOCKED)
        RETURNING ${PENDING_COLUMNS}`,
      [producerGroup, limit, intervalMs],
    );
    return rows;
  }
}
