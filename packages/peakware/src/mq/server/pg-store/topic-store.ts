/**
 * Topics and their queues in PostgreSQL (`mq_topics`, `mq_queues`), with a one-second cache
 * of topic settings for the hot paths, and each consumer group's retry topic.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../../core/errors.js';
import { TopicNames } from '../../message-types.js';
import type { TopicRecord, TopicSpec } from '../message-records.js';
import { inTransaction } from './transaction.js';

function topicRecord(r: {
  name: string;
  queues: number;
  ordered: boolean;
  internal: boolean;
  max_body_bytes: number;
  produce_secret: string | null;
  consume_secret: string | null;
  created_at: Date;
}): TopicRecord {
  return {
    name: r.name,
    queues: r.queues,
    ordered: r.ordered,
    internal: r.internal,
    maxBodyBytes: r.max_body_bytes,
    produceSecret: r.produce_secret,
    consumeSecret: r.consume_secret,
    createdAt: r.created_at,
  };
}

/** The topic catalogue. */
export class PgTopicStore {
  readonly #pool: pg.Pool;
  readonly #topics = new Map<string, { record: TopicRecord; at: number }>();

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Creates a topic and its queues; an existing topic is returned unchanged. */
  async createTopic(spec: TopicSpec): Promise<{ record: TopicRecord; created: boolean }> {
    return inTransaction(this.#pool, async (c) => {
      const inserted = await c.query(
        `INSERT INTO peak.mq_topics (name, queues, ordered, internal, max_body_bytes, produce_secret, consume_secret)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING RETURNING *`,
        [
          spec.name,
          spec.queues,
          spec.ordered,
          spec.internal ?? false,
          spec.maxBodyBytes,
          spec.produceSecret,
          spec.consumeSecret,
        ],
      );
      if (inserted.rowCount === 1) {
        await c.query(
          'INSERT INTO peak.mq_queues (topic, queue_id) SELECT $1, g FROM generate_series(0, $2::int - 1) g',
          [spec.name, spec.queues],
        );
        const record = topicRecord(inserted.rows[0]);
        this.#topics.set(record.name, { record, at: Date.now() });
        return { record, created: true };
      }
      const { rows } = await c.query('SELECT * FROM peak.mq_topics WHERE name = $1', [spec.name]);
      return { record: topicRecord(rows[0]), created: false };
    });
  }

  /** A topic by name (cached for a second), or undefined. */
  async topic(name: string): Promise<TopicRecord | undefined> {
    const hit = this.#topics.get(name);
    if (hit !== undefined && Date.now() - hit.at < 1000) return hit.record;
    const { rows } = await this.#pool.query('SELECT * FROM peak.mq_topics WHERE name = $1', [name]);
    if (rows.length === 0) {
      this.#topics.delete(name);
      return undefined;
    }
    const record = topicRecord(rows[0]);
    this.#topics.set(name, { record, at: Date.now() });
    return record;
  }

  /** A topic, or a PEAK_MQ_UNKNOWN_TOPIC error naming it. */
  async requireTopic(name: string): Promise<TopicRecord> {
    const t = await this.topic(name);
    if (t === undefined) {
      throw new PeakError(
        ErrorCodes.MQ_UNKNOWN_TOPIC,
        `topic '${name}' does not exist; create it first (peak mq topics create ${name})`,
        { details: { topic: name } },
      );
    }
    return t;
  }

  /** Every topic with its queue depth (sum of next offsets). */
  async listTopics(): Promise<(TopicRecord & { messages: number })[]> {
    const { rows } = await this.#pool.query(
      `SELECT t.*, coalesce((SELECT sum(next_offset) FROM peak.mq_queues q WHERE q.topic = t.name), 0)::float8 AS messages
         FROM peak.mq_topics t ORDER BY t.name`,
    );
    return rows.map((r) => ({ ...topicRecord(r), messages: Number(r.messages) }));
  }

  /** Makes sure a group's retry topic exists, inside the caller's transaction. */
  async ensureRetryTopicIn(c: pg.PoolClient, grp: string): Promise<void> {
    const name = TopicNames.retry(grp);
    const r = await c.query(
      `INSERT INTO peak.mq_topics (name, queues, ordered, internal, max_body_bytes)
       VALUES ($1, 1, false, true, 2147483647) ON CONFLICT (name) DO NOTHING`,
      [name],
    );
    if (r.rowCount === 1)
      await c.query('INSERT INTO peak.mq_queues (topic, queue_id) VALUES ($1, 0)', [name]);
  }

  /** Makes sure a group's retry topic exists. */
  ensureRetryTopic(grp: string): Promise<void> {
    return inTransaction(this.#pool, (c) => this.ensureRetryTopicIn(c, grp));
  }
}
