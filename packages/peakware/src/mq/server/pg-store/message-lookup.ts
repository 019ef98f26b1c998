/**
 * Query by message id, by key (GIN index over messages that have keys) and by topic + tag +
 * time range, and the first deliveries of stored copies still in flight (a message's
 * description shows them before any trace row exists).
 */
import type pg from 'pg';
import type { InflightFirst, MessagePosition, MessageRow } from '../message-records.js';
import { CLAIM_HOLDS_SQL } from './claim-rows.js';

// A stored message's place in query order, with stored_at to the microsecond (a Date
// keeps milliseconds, and one group commit stores many messages in the same one).
const POSITION = `(extract(epoch FROM stored_at) * 1000000)::bigint::text AS stored_us`;
const AT_US = `timestamptz 'epoch' + $POS::bigint * interval '1 microsecond'`;

function at(n: number): string {
  return AT_US.replace('$POS', `$${n}`);
}

/** Reads stored messages. */
export class PgMessageLookup {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Stored copies of a message by id (the original first, then retry copies). */
  async byId(id: string): Promise<MessageRow[]> {
    const { rows } = await this.#pool.query<MessageRow>(
      `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
              born_at, stored_at, reconsume, origin_topic
         FROM peak.mq_messages WHERE msg_id = $1 ORDER BY stored_at`,
      [id],
    );
    return rows;
  }

  /** Messages carrying a key, newest first (after `after` in that order, when given). */
  async byKey(
    key: string,
    topic: string | undefined,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]> {
    const { rows } = await this.#pool.query<MessageRow & { stored_us: string }>(
      `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
              born_at, stored_at, reconsume, origin_topic, ${POSITION}
         FROM peak.mq_messages WHERE keys @> ARRAY[$1]::text[] AND keys <> '{}' AND ($2::text IS NULL OR topic = $2)
          AND ($4::bigint IS NULL
               OR (stored_at, topic, queue_id, queue_offset::bigint) < (${at(4)}, $5::text, $6::int, $7::bigint))
        ORDER BY stored_at DESC, topic DESC, queue_id DESC, queue_offset::bigint DESC LIMIT $3`,
      [
        key,
        topic ?? null,
        limit,
        after?.storedUs ?? null,
        after?.topic ?? null,
        after?.queueId ?? null,
        after?.queueOffset ?? null,
      ],
    );
    return rows;
  }

  /**
   * Messages of a topic stored in [from, to), optionally with one tag, oldest first (after
   * `after` in that order, when given).
   */
  async byTime(
    topic: string,
    tag: string | undefined,
    from: Date,
    to: Date,
    limit: number,
    after?: MessagePosition,
  ): Promise<(MessageRow & { stored_us: string })[]> {
    const { rows } = await this.#pool.query<MessageRow & { stored_us: string }>(
      `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
              born_at, stored_at, reconsume, origin_topic, ${POSITION}
         FROM peak.mq_messages
        WHERE topic = $1 AND stored_at >= $2 AND stored_at < $3 AND ($4::text IS NULL OR tag = $4)
          AND ($6::bigint IS NULL
               OR (stored_at, queue_id, queue_offset::bigint) > (${at(6)}, $7::int, $8::bigint))
        ORDER BY stored_at, queue_id, queue_offset::bigint LIMIT $5`,
      [
        topic,
        from,
        to,
        tag ?? null,
        limit,
        after?.storedUs ?? null,
        after?.queueId ?? null,
        after?.queueOffset ?? null,
      ],
    );
    return rows;
  }

  /** First deliveries of these stored copies still in flight (no trace row yet). */
  async inflightFirst(
    copies: readonly { topic: string; queue_id: number; queue_offset: string }[],
  ): Promise<InflightFirst[]> {
    if (copies.length === 0) return [];
    const { rows } = await this.#pool.query(
      `SELECT d.grp, d.consumer_id, d.delivered_at FROM peak.mq_deliveries d
         JOIN unnest($1::text[], $2::int[], $3::bigint[]) AS x(t, q, o)
           ON d.topic = x.t AND d.queue_id = x.q AND d.queue_offset = x.o
        WHERE d.deliveries = 1 AND d.delivered_at IS NOT NULL
       UNION ALL
       SELECT c.grp, c.consumer_id, c.delivered_at FROM peak.mq_claims c
         JOIN unnest($1::text[], $2::int[], $3::bigint[]) AS x(t, q, o)
           ON c.topic = x.t AND c.queue_id = x.q AND ${CLAIM_HOLDS_SQL('c', 'x.o')}`,
      [
        copies.map((c) => c.topic),
        copies.map((c) => c.queue_id),
        copies.map((c) => c.queue_offset),
      ],
    );
    return rows;
  }
}
