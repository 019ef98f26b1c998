/**
 * The append-only message log (`mq_messages`): appending draws offsets from the queue's row
 * (`UPDATE mq_queues ... RETURNING`), whose lock is held until commit, so a queue's offsets
 * become visible in order and without gaps a reader could skip. Messages with a message
 * group go to the group's queue (a hash); the rest of one call go to one queue chosen
 * round-robin.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../../core/errors.js';
import type { AppendInput, AppendResult, TopicRecord } from '../message-records.js';
import { KEYS_SQL, keysParam, packBodies, propsParam } from './array-params.js';
import type { PgTopicStore } from './topic-store.js';
import { inTransaction } from './transaction.js';

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Appends to queues. */
export class PgQueueLog {
  readonly #pool: pg.Pool;
  readonly #topics: PgTopicStore;
  readonly #appended: (topic: string) => void;
  readonly #rr = new Map<string, number>();

  /** `appended` is called after messages were appended to a topic (before commit). */
  constructor(pool: pg.Pool, topics: PgTopicStore, appended: (topic: string) => void) {
    this.#pool = pool;
    this.#topics = topics;
    this.#appended = appended;
  }

  /** The next queue of `topic` round-robin (from a random start), for messages without a group. */
  nextQueue(topic: string, queues: number): number {
    const next = (this.#rr.get(topic) ?? Math.floor(Math.random() * queues)) + 1;
    this.#rr.set(topic, next);
    return next % queues;
  }

  /**
   * Appends messages inside the caller's transaction. Messages with a group go to the
   * group's queue (hash); the rest of one call go to one queue chosen round-robin, so
   * concurrent batches spread over the topic's queues instead of waiting on one lock.
   */
  async appendIn(client: pg.PoolClient, items: readonly AppendInput[]): Promise<AppendResult[]> {
    if (items.length === 0) return [];
    return this.#appendPlanned(client, items, await this.#plan(items));
  }

  /** Which queue each message goes to, grouped by queue. */
  async #plan(
    items: readonly AppendInput[],
  ): Promise<Map<string, { topic: string; queueId: number; idx: number[] }>> {
    const byQueue = new Map<string, { topic: string; queueId: number; idx: number[] }>();
    const rrChoice = new Map<string, number>();
    const topics = new Map<string, TopicRecord>();
    for (let i = 0; i < items.length; i++) {
      const m = items[i]!;
      let topic = topics.get(m.topic);
      if (topic === undefined) {
        topic = await this.#topics.requireTopic(m.topic);
        topics.set(m.topic, topic);
      }
      let queueId: number;
      if (m.group !== null && m.group !== '') {
        queueId = fnv1a(m.group) % topic.queues;
      } else {
        let chosen = rrChoice.get(m.topic);
        if (chosen === undefined) {
          chosen = this.nextQueue(m.topic, topic.queues);
          rrChoice.set(m.topic, chosen);
        }
        queueId = chosen;
      }
      const key = `${m.topic}\u0000${String(queueId).padStart(4, '0')}`;
      let slot = byQueue.get(key);
      if (slot === undefined) {
        slot = { topic: m.topic, queueId, idx: [] };
        byQueue.set(key, slot);
      }
      slot.idx.push(i);
    }
    return byQueue;
  }

  async #appendPlanned(
    client: pg.PoolClient | pg.Pool,
    items: readonly AppendInput[],
    byQueue: Map<string, { topic: string; queueId: number; idx: number[] }>,
  ): Promise<AppendResult[]> {
    const results: AppendResult[] = new Array(items.length);
    const cols = {
      topic: [] as string[],
      queue: [] as number[],
      offset: [] as string[],
      id: [] as string[],
      tag: [] as (string | null)[],
      keys: [] as (string | null)[],
      group: [] as (string | null)[],
      props: [] as (string | null)[],
      body: [] as Buffer[],
      born: [] as Date[],
      reconsume: [] as number[],
      origin: [] as (string | null)[],
    };
    // Lock queues in one global order so two appenders never deadlock.
    for (const key of [...byQueue.keys()].sort()) {
      const slot = byQueue.get(key)!;
      const n = slot.idx.length;
      const { rows } = await client.query<{ base: string }>(
        `UPDATE peak.mq_queues SET next_offset = next_offset + $3
          WHERE topic = $1 AND queue_id = $2 RETURNING (next_offset - $3)::text AS base`,
        [slot.topic, slot.queueId, n],
      );
      const base = rows[0]?.base;
      if (base === undefined) {
        throw new PeakError(
          ErrorCodes.MQ_UNKNOWN_TOPIC,
          `topic '${slot.topic}' has no queue ${slot.queueId}`,
          {
            details: { topic: slot.topic },
          },
        );
      }
      let offset = BigInt(base);
      for (const i of slot.idx) {
        const m = items[i]!;
        cols.topic.push(m.topic);
        cols.queue.push(slot.queueId);
        cols.offset.push(offset.toString());
        cols.id.push(m.msgId.toString());
        cols.tag.push(m.tag);
        cols.keys.push(keysParam(m.keys));
        cols.group.push(m.group);
        cols.props.push(propsParam(m.props));
        cols.body.push(m.body);
        cols.born.push(m.bornAt);
        cols.reconsume.push(m.reconsume ?? 0);
        cols.origin.push(m.originTopic ?? null);
        results[i] = {
          id: m.msgId.toString(),
          topic: m.topic,
          queueId: slot.queueId,
          queueOffset: offset.toString(),
        };
        offset++;
      }
    }
    const packed = packBodies(cols.body);
    await client.query(
      `INSERT INTO peak.mq_messages
         (topic, queue_id, queue_offset, msg_id, tag, keys, msg_group, props, body, born_at, reconsume, origin_topic)
       SELECT t, q, o, i, tg, ${KEYS_SQL('k')}, g, coalesce(p, '{}'::jsonb),
              substring($13::bytea FROM bs FOR bl), bt, r, ot
         FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::jsonb[], $7::text[],
                     $8::jsonb[], $9::int[], $14::int[], $10::timestamptz[], $11::int[], $12::text[])
           AS x(t, q, o, i, tg, k, g, p, bs, bl, bt, r, ot)`,
      [
        cols.topic,
        cols.queue,
        cols.offset,
        cols.id,
        cols.tag,
        cols.keys,
        cols.group,
        cols.props,
        packed.starts,
        cols.born,
        cols.reconsume,
        cols.origin,
        packed.blob,
        packed.lengths,
      ],
    );
    for (const topic of new Set(cols.topic)) this.#appended(topic);
    return results;
  }

  /** Appends messages in a transaction of their own. */
  async append(items: readonly AppendInput[]): Promise<AppendResult[]> {
    if (items.length === 0) return [];
    const plan = await this.#plan(items);
    if (plan.size === 1) {
      // One queue (the common batch): draw offsets and insert in one statement, one
      // round trip, committed on its own.
      const slot = [...plan.values()][0]!;
      const list = slot.idx.map((i) => items[i]!);
      const packed = packBodies(list.map((m) => m.body));
      const { rows } = await this.#pool.query<{ base: string | null; n: number }>(
        `WITH q AS (
           UPDATE peak.mq_queues SET next_offset = next_offset + $3
            WHERE topic = $1 AND queue_id = $2 RETURNING next_offset - $3 AS base),
         ins AS (
           INSERT INTO peak.mq_messages
             (topic, queue_id, queue_offset, msg_id, tag, keys, msg_group, props, body, born_at, reconsume, origin_topic)
           SELECT $1, $2, q.base + x.ord - 1, x.i, x.tg, ${KEYS_SQL('x.k')}, x.g, coalesce(x.p, '{}'::jsonb),
                  substring($13::bytea FROM x.bs FOR x.bl), x.bt, x.r, x.ot
             FROM q, unnest($4::bigint[], $5::text[], $6::jsonb[], $7::text[], $8::jsonb[], $9::int[], $14::int[],
                            $10::timestamptz[], $11::int[], $12::text[])
                     WITH ORDINALITY AS x(i, tg, k, g, p, bs, bl, bt, r, ot, ord)
           RETURNING 1)
         SELECT (SELECT base FROM q)::text AS base, (SELECT count(*) FROM ins)::int AS n`,
        [
          slot.topic,
          slot.queueId,
          list.length,
          list.map((m) => m.msgId.toString()),
          list.map((m) => m.tag),
          list.map((m) => keysParam(m.keys)),
          list.map((m) => m.group),
          list.map((m) => propsParam(m.props)),
          packed.starts,
          list.map((m) => m.bornAt),
          list.map((m) => m.reconsume ?? 0),
          list.map((m) => m.originTopic ?? null),
          packed.blob,
          packed.lengths,
        ],
      );
      const base = rows[0]?.base;
      if (base === null || base === undefined || rows[0]?.n !== list.length) {
        throw new PeakError(
          ErrorCodes.MQ_UNKNOWN_TOPIC,
          `topic '${slot.topic}' has no queue ${slot.queueId}`,
          {
            details: { topic: slot.topic },
          },
        );
      }
      this.#appended(slot.topic);
      const results: AppendResult[] = new Array(items.length);
      slot.idx.forEach((i, n) => {
        results[i] = {
          id: items[i]!.msgId.toString(),
          topic: slot.topic,
          queueId: slot.queueId,
          queueOffset: (BigInt(base) + BigInt(n)).toString(),
        };
      });
      return results;
    }
    return inTransaction(this.#pool, (c) => this.#appendPlanned(c, items, plan));
  }
}
