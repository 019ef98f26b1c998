/**
 * The pending table (`mq_pending`): messages not in a queue yet. Delayed messages, retries
 * (due after their backoff), outbox rows (committed by the caller's transaction) and half
 * messages (waiting for commit or rollback, see half-messages.ts). The relay moves due rows
 * into their queues, one relay at a time over all nodes (an advisory lock keeps order).
 */
import type pg from 'pg';
import type { Logger } from '../../../core/logger.js';
import type { AppendInput, PendingInput, PendingRow } from '../message-records.js';
import { KEYS_SQL, keysParam, packBodies, propsParam } from './array-params.js';
import type { PgQueueLog } from './queue-log.js';
import type { PgTopicStore } from './topic-store.js';
import { inTransaction } from './transaction.js';

/** The columns of a {@link PendingRow}, as every read of the pending table selects them. */
export const PENDING_COLUMNS =
  'seq, kind, msg_id::text AS msg_id, topic, tag, keys, msg_group, props, body, born_at, deliver_at, reconsume, origin_topic, producer_group, check_count';

// pg_try_advisory_xact_lock key meaning "mq relay": one relay at a time keeps order.
const RELAY_LOCK = '7354696302';

/** Delayed, retry, outbox and half messages, and the relay of due ones. */
export class PgPendingTable {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #topics: PgTopicStore;
  readonly #log: PgQueueLog;
  readonly #appended: (topic: string) => void;

  /** `appended` is called after the relay moved messages into a topic's queues. */
  constructor(
    pool: pg.Pool,
    logger: Logger,
    topics: PgTopicStore,
    log: PgQueueLog,
    appended: (topic: string) => void,
  ) {
    this.#pool = pool;
    this.#logger = logger;
    this.#topics = topics;
    this.#log = log;
    this.#appended = appended;
  }

  /** Puts messages into the pending table (delayed, retry or half messages). */
  async addPending(
    db: pg.Pool | pg.PoolClient,
    kind: PendingRow['kind'],
    items: readonly PendingInput[],
  ): Promise<void> {
    if (items.length === 0) return;
    const packed = packBodies(items.map((m) => m.body));
    await db.query(
      `INSERT INTO peak.mq_pending
         (kind, msg_id, topic, tag, keys, msg_group, props, body, born_at, deliver_at, reconsume, origin_topic, producer_group)
       SELECT $1, i, t, tg, ${KEYS_SQL('k')}, g, coalesce(p, '{}'::jsonb),
              substring($14::bytea FROM bs FOR bl), bt, d, r, ot, pg
         FROM unnest($2::bigint[], $3::text[], $4::text[], $5::jsonb[], $6::text[], $7::jsonb[], $8::int[],
                     $15::int[], $9::timestamptz[], $10::timestamptz[], $11::int[], $12::text[], $13::text[])
           AS x(i, t, tg, k, g, p, bs, bl, bt, d, r, ot, pg)`,
      [
        kind,
        items.map((m) => m.msgId.toString()),
        items.map((m) => m.topic),
        items.map((m) => m.tag),
        items.map((m) => keysParam(m.keys)),
        items.map((m) => m.group),
        items.map((m) => propsParam(m.props)),
        packed.starts,
        items.map((m) => m.bornAt),
        items.map((m) => m.deliverAt),
        items.map((m) => m.reconsume ?? 0),
        items.map((m) => m.originTopic ?? null),
        items.map((m) => m.producerGroup ?? null),
        packed.blob,
        packed.lengths,
      ],
    );
  }

  /**
   * Appends due messages to their queues and puts later ones into the pending table, in one
   * durable transaction: all of the batch or none.
   */
  async appendAndDelay(due: readonly AppendInput[], later: readonly PendingInput[]): Promise<void> {
    await inTransaction(this.#pool, async (c) => {
      await this.#log.appendIn(c, due);
      await this.addPending(c, 'delay', later);
    });
  }

  /**
   * Moves due pending rows (delayed, retries, committed outbox and half messages) into
   * their queues, oldest due first, in one transaction: a crash leaves them pending, never
   * lost. Returns how many moved; 0 when another node's relay holds the lock.
   */
  async relayDue(limit: number): Promise<{ moved: number; rows: PendingRow[] }> {
    return inTransaction(
      this.#pool,
      async (c) => {
        const { rows: lock } = await c.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_xact_lock($1) AS ok',
          [RELAY_LOCK],
        );
        if (lock[0]?.ok !== true) return { moved: 0, rows: [] };
        const { rows } = await c.query<PendingRow>(
          `DELETE FROM peak.mq_pending WHERE seq IN (
           SELECT seq FROM peak.mq_pending WHERE kind <> 'half' AND deliver_at <= now()
            ORDER BY deliver_at, seq LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING ${PENDING_COLUMNS}`,
          [limit],
        );
        if (rows.length === 0) return { moved: 0, rows: [] };
        rows.sort(
          (a, b) =>
            a.deliver_at.getTime() - b.deliver_at.getTime() ||
            Number(BigInt(a.seq) - BigInt(b.seq)),
        );
        const ok: PendingRow[] = [];
        for (const r of rows) {
          if ((await this.#topics.topic(r.topic)) === undefined) {
            this.#logger.error(
              { topic: r.topic, id: r.msg_id },
              'mq relay: dropping a message for a topic that no longer exists',
            );
            continue;
          }
          ok.push(r);
        }
        await this.#log.appendIn(
          c,
          ok.map((r) => ({
            topic: r.topic,
            msgId: BigInt(r.msg_id),
            tag: r.tag,
            keys: r.keys,
            group: r.msg_group,
            props: r.props,
            body: r.body,
            bornAt: r.born_at,
            reconsume: r.reconsume,
            originTopic: r.origin_topic,
          })),
        );
        return { moved: ok.length, rows: ok };
      },
      false,
    );
  }

  /**
   * The relay's fast path: moves due delayed and outbox messages without a message group
   * of one topic (the earliest due one) into one of its queues in a single statement, so
   * bodies never leave PostgreSQL. One queue row is locked, like any single-queue append.
   * Grouped messages (their queue is a hash of the group), retries and anything else go
   * through {@link relayDue}. Returns how many moved and to which topic.
   */
  async relayDueBulk(limit: number): Promise<{ moved: number; topic: string | null }> {
    return inTransaction(
      this.#pool,
      async (c) => {
        const { rows: lock } = await c.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_xact_lock($1) AS ok',
          [RELAY_LOCK],
        );
        if (lock[0]?.ok !== true) return { moved: 0, topic: null };
        const { rows: first } = await c.query<{ topic: string; queues: number }>(
          `SELECT p.topic, t.queues FROM peak.mq_pending p JOIN peak.mq_topics t ON t.name = p.topic
            WHERE p.kind IN ('delay', 'outbox') AND p.msg_group IS NULL AND p.deliver_at <= now()
            ORDER BY p.deliver_at, p.seq LIMIT 1`,
        );
        const head = first[0];
        if (head === undefined) return { moved: 0, topic: null };
        const queueId = this.#log.nextQueue(head.topic, head.queues);
        const { rows } = await c.query<{ n: number; due: number }>(
          `WITH due AS (
             DELETE FROM peak.mq_pending WHERE seq IN (
               SELECT seq FROM peak.mq_pending
                WHERE kind IN ('delay', 'outbox') AND msg_group IS NULL AND topic = $1
                  AND deliver_at <= now()
                ORDER BY deliver_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING *),
           numbered AS (
             SELECT due.*, row_number() OVER (ORDER BY deliver_at, seq) AS rn FROM due),
           q AS (
             UPDATE peak.mq_queues SET next_offset = next_offset + (SELECT count(*) FROM due)
              WHERE topic = $1 AND queue_id = $2
              RETURNING next_offset - (SELECT count(*) FROM due) AS base),
           ins AS (
             INSERT INTO peak.mq_messages
               (topic, queue_id, queue_offset, msg_id, tag, keys, msg_group, props, body, born_at,
                reconsume, origin_topic)
             SELECT $1, $2, q.base + x.rn - 1, x.msg_id, x.tag, x.keys, NULL, x.props, x.body,
                    x.born_at, x.reconsume, x.origin_topic
               FROM numbered x, q
             RETURNING 1)
           SELECT (SELECT count(*) FROM ins)::int AS n, (SELECT count(*) FROM due)::int AS due`,
          [head.topic, queueId, limit],
        );
        const moved = rows[0]?.n ?? 0;
        const due = rows[0]?.due ?? 0;
        if (moved !== due) {
          // The queue row vanished (topic dropped meanwhile): undo, the general path decides.
          throw new Error(`mq relay: moved ${moved} of ${due} due messages of '${head.topic}'`);
        }
        if (moved > 0) this.#appended(head.topic);
        return { moved, topic: head.topic };
      },
      false,
    );
  }

  /** The earliest due time among pending rows (not half), or undefined. */
  async nextDue(): Promise<Date | undefined> {
    const { rows } = await this.#pool.query<{ d: Date | null }>(
      "SELECT min(deliver_at) AS d FROM peak.mq_pending WHERE kind <> 'half'",
    );
    return rows[0]?.d ?? undefined;
  }

  /** A pending (delayed, retry, outbox, half) copy of a message, if any. */
  async pendingById(id: string): Promise<PendingRow[]> {
    const { rows } = await this.#pool.query<PendingRow>(
      `SELECT ${PENDING_COLUMNS} FROM peak.mq_pending WHERE msg_id = $1`,
      [id],
    );
    return rows;
  }
}
