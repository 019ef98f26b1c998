/**
 * Consumer groups (`mq_groups`: retry settings), their live consumers (`mq_consumers`:
 * heartbeats, leaving) and their offsets (`mq_offsets`: replay by time).
 */
import type pg from 'pg';
import type { GroupSettings } from '../message-records.js';
import { inTransaction } from './transaction.js';

/** Consumer groups, members and offsets. */
export class PgConsumerGroups {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Creates or updates a consumer group's settings. */
  async upsertGroup(name: string, s: GroupSettings): Promise<void> {
    await this.#pool.query(
      `INSERT INTO peak.mq_groups (name, broadcasting, max_retries, backoff_ms, invisible_ms)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (name) DO UPDATE SET broadcasting = $2, max_retries = $3, backoff_ms = $4, invisible_ms = $5
        WHERE (peak.mq_groups.broadcasting, peak.mq_groups.max_retries, peak.mq_groups.backoff_ms, peak.mq_groups.invisible_ms)
              IS DISTINCT FROM ($2, $3, $4::int[], $5)`,
      [name, s.broadcasting, s.maxRetries, s.backoffMs, s.invisibleMs],
    );
  }

  /** A group's settings, or undefined. */
  async group(name: string): Promise<GroupSettings | undefined> {
    const { rows } = await this.#pool.query('SELECT * FROM peak.mq_groups WHERE name = $1', [name]);
    const r = rows[0];
    if (r === undefined) return undefined;
    return {
      broadcasting: r.broadcasting,
      maxRetries: r.max_retries,
      backoffMs: r.backoff_ms,
      invisibleMs: r.invisible_ms,
    };
  }

  /** Records that a consumer is alive and returns the live consumers of (group, topic). */
  async heartbeat(
    grp: string,
    topic: string,
    consumerId: string,
    sessionMs: number,
  ): Promise<string[]> {
    const { rows } = await this.#pool.query<{ consumer_id: string }>(
      `WITH beat AS (
         INSERT INTO peak.mq_consumers (grp, topic, consumer_id) VALUES ($1, $2, $3)
         ON CONFLICT (grp, topic, consumer_id) DO UPDATE SET last_seen = now())
       SELECT consumer_id FROM peak.mq_consumers
        WHERE grp = $1 AND topic = $2 AND last_seen > now() - make_interval(secs => $4::float8 / 1000)
       UNION SELECT $3`,
      [grp, topic, consumerId, sessionMs],
    );
    return rows.map((r) => r.consumer_id);
  }

  /** Removes a consumer; its queues move to the others on their next receive. */
  async leave(grp: string, topic: string, consumerId: string): Promise<void> {
    await this.#pool.query(
      'DELETE FROM peak.mq_consumers WHERE grp = $1 AND topic = $2 AND consumer_id = $3',
      [grp, topic, consumerId],
    );
  }

  /**
   * Rewinds (or forwards) a group to the first message stored at or after `at` in every
   * queue of `topic`; deliveries in flight are dropped, so consumption restarts there.
   */
  async resetOffsets(
    grp: string,
    topic: string,
    at: Date,
  ): Promise<{ queueId: number; offset: string }[]> {
    return inTransaction(this.#pool, async (c) => {
      await c.query('DELETE FROM peak.mq_deliveries WHERE grp = $1 AND topic = $2', [grp, topic]);
      await c.query('DELETE FROM peak.mq_claims WHERE grp = $1 AND topic = $2', [grp, topic]);
      const { rows } = await c.query<{ queue_id: number; offset: string }>(
        `INSERT INTO peak.mq_offsets (grp, topic, queue_id, pulled_offset)
         SELECT $1, q.topic, q.queue_id,
                coalesce((SELECT min(m.queue_offset) FROM peak.mq_messages m
                           WHERE m.topic = q.topic AND m.queue_id = q.queue_id AND m.stored_at >= $3), q.next_offset)
           FROM peak.mq_queues q WHERE q.topic = $2
         ON CONFLICT (grp, topic, queue_id) DO UPDATE SET pulled_offset = excluded.pulled_offset
         RETURNING queue_id, pulled_offset::text AS offset`,
        [grp, topic, at],
      );
      return rows
        .map((r) => ({ queueId: r.queue_id, offset: r.offset }))
        .sort((x, y) => x.queueId - y.queueId);
    });
  }
}
