/**
 * The dead-letter queue (`mq_dlq`): per consumer group, the messages that failed their last
 * retry (or were never acked), listed and resent from here; a resend goes through the
 * group's retry topic, due now.
 */
import type pg from 'pg';
import { TopicNames } from '../../message-types.js';
import type { DeadLetterRow, DeadLetterState, MessageRow } from '../message-records.js';
import type { PgPendingTable } from './pending-table.js';
import type { PgTopicStore } from './topic-store.js';
import { inTransaction } from './transaction.js';

/** Dead letters per group. */
export class PgDeadLetters {
  readonly #pool: pg.Pool;
  readonly #topics: PgTopicStore;
  readonly #pending: PgPendingTable;

  constructor(pool: pg.Pool, topics: PgTopicStore, pending: PgPendingTable) {
    this.#pool = pool;
    this.#topics = topics;
    this.#pending = pending;
  }

  /** Dead-letters a message for a group, in the caller's transaction (a repeat updates it). */
  async addIn(
    c: pg.PoolClient,
    grp: string,
    m: MessageRow,
    attempts: number,
    reason: string,
  ): Promise<void> {
    await c.query(
      `INSERT INTO peak.mq_dlq (grp, msg_id, topic, tag, keys, msg_group, props, body, born_at, reconsume, reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (grp, msg_id) DO UPDATE SET dead_at = now(), reconsume = $10, reason = $11`,
      [
        grp,
        m.msg_id,
        m.origin_topic ?? m.topic,
        m.tag,
        m.keys,
        m.msg_group,
        m.props,
        m.body,
        m.born_at,
        attempts,
        reason,
      ],
    );
  }

  /** Dead-lettered messages of a group, newest first. */
  async listDlq(grp: string, limit: number): Promise<DeadLetterRow[]> {
    const { rows } = await this.#pool.query(
      `SELECT msg_id::text, topic, tag, keys, msg_group, props, body, born_at, reconsume, dead_at, reason
         FROM peak.mq_dlq WHERE grp = $1 ORDER BY dead_at DESC LIMIT $2`,
      [grp, limit],
    );
    return rows;
  }

  /** Sends dead-lettered messages back to the group (through its retry topic), now. */
  async resendDlq(grp: string, ids: readonly string[] | 'all'): Promise<string[]> {
    return inTransaction(this.#pool, async (c) => {
      const { rows } = await c.query<MessageRow>(
        `DELETE FROM peak.mq_dlq WHERE grp = $1 AND ($2::bigint[] IS NULL OR msg_id = ANY($2::bigint[]))
         RETURNING msg_id::text, topic, tag, keys, msg_group, props, body, born_at`,
        [grp, ids === 'all' ? null : ids],
      );
      await this.#topics.ensureRetryTopicIn(c, grp);
      await this.#pending.addPending(
        c,
        'retry',
        rows.map((m) => ({
          topic: TopicNames.retry(grp),
          msgId: BigInt(m.msg_id),
          tag: m.tag,
          keys: m.keys,
          group: m.msg_group,
          props: m.props,
          body: m.body,
          bornAt: m.born_at,
          reconsume: 0,
          originTopic: m.topic,
          deliverAt: new Date(),
        })),
      );
      await c.query("SELECT pg_notify('peak_mq_pending', '')");
      return rows.map((r) => r.msg_id);
    });
  }

  /** A group's dead-lettered copy of a message, if any. */
  async dlqById(id: string): Promise<DeadLetterState[]> {
    const { rows } = await this.#pool.query(
      'SELECT grp, dead_at, reason, reconsume FROM peak.mq_dlq WHERE msg_id = $1',
      [id],
    );
    return rows;
  }
}
