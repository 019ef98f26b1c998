/**
 * Backlog per consumer group, topic and queue: messages stored but not yet acked, and how
 * many of them are in flight. Needs nothing but the pool, so monitoring (the broker's stats,
 * telemetry's /metrics and mq-backlog alerts) reads it without a whole store.
 */
import type pg from 'pg';
import type { QueueBacklog, Subscription } from '../message-records.js';
import type { BacklogReader } from '../message-store.js';
import { CLAIM_UNACKED_SQL } from './claim-rows.js';

/** The {@link BacklogReader} on PostgreSQL. */
export class PgBacklogReader implements BacklogReader {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Backlog per queue of a group on a topic: stored but not yet acked. */
  async backlog(grp: string, topic: string): Promise<QueueBacklog[]> {
    const { rows } = await this.#pool.query(
      `SELECT q.queue_id, q.next_offset::text AS max_offset,
              coalesce(least((SELECT min(queue_offset) FROM peak.mq_deliveries d
                               WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id),
                             (SELECT min(first_offset) FROM peak.mq_claims c
                               WHERE c.grp = $1 AND c.topic = q.topic AND c.queue_id = q.queue_id)),
                       o.pulled_offset, 0)::text AS committed,
              ((SELECT count(*) FROM peak.mq_deliveries d
                 WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id AND d.visible_at > now())
               + (SELECT coalesce(sum(${CLAIM_UNACKED_SQL('c')}), 0) FROM peak.mq_claims c
                   WHERE c.grp = $1 AND c.topic = q.topic AND c.queue_id = q.queue_id AND c.visible_at > now()))::int AS inflight
         FROM peak.mq_queues q
         LEFT JOIN peak.mq_offsets o ON o.grp = $1 AND o.topic = q.topic AND o.queue_id = q.queue_id
        WHERE q.topic = $2 ORDER BY q.queue_id`,
      [grp, topic],
    );
    return rows.map((r) => ({
      queueId: r.queue_id,
      maxOffset: r.max_offset,
      committed: r.committed,
      backlog: Number(BigInt(r.max_offset) - BigInt(r.committed)),
      inflight: r.inflight,
    }));
  }

  /** Every (group, topic) pair that has offsets, for monitoring. */
  async subscriptions(): Promise<Subscription[]> {
    const { rows } = await this.#pool.query(
      'SELECT DISTINCT grp, topic FROM peak.mq_offsets ORDER BY grp, topic',
    );
    return rows;
  }
}
