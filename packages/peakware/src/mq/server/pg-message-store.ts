/**
 * The broker's storage on PostgreSQL (the `MessageStore` seam of the design): topics and
 * their queues, the append-only message log, per-group delivery state, the pending table
 * (delayed, retry, outbox, half messages), the dead-letter queue and trace events.
 *
 * How ordering and visibility work: appending to a queue takes the queue's row lock
 * (`UPDATE mq_queues ... RETURNING`) to draw offsets and holds it until commit, so offsets
 * of one queue become visible in order and without gaps a reader could skip. A consumer
 * group reads a queue by pulling rows at or after its `pulled_offset` into
 * `mq_deliveries` (bounded by a window), then hands out visible deliveries with an
 * invisibility timeout; an ack deletes the delivery, an unacked one becomes visible again.
 * In an ordered topic a message whose message group already has a delivery waits (visible_at
 * NULL) until the one before it is acked or dead-lettered: a failing message blocks its own
 * group, never the queue.
 */
import type pg from 'pg';
import { ErrorCodes, PeakError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { TopicNames } from '../message-types.js';

/** A topic's settings as stored. */
export interface TopicRecord {
  name: string;
  queues: number;
  ordered: boolean;
  internal: boolean;
  maxBodyBytes: number;
  produceSecret: string | null;
  consumeSecret: string | null;
  createdAt: Date;
}

/** A message ready to be appended to a queue. */
export interface AppendInput {
  topic: string;
  msgId: bigint;
  tag: string | null;
  keys: readonly string[];
  group: string | null;
  props: Record<string, string>;
  body: Buffer;
  bornAt: Date;
  reconsume?: number;
  originTopic?: string | null;
}

/** Where an appended message landed. */
export interface AppendResult {
  id: string;
  topic: string;
  queueId: number;
  queueOffset: string;
}

/** A message row as read back. */
export interface MessageRow {
  topic: string;
  queue_id: number;
  queue_offset: string;
  msg_id: string;
  tag: string | null;
  keys: string[];
  msg_group: string | null;
  props: Record<string, string>;
  body: Buffer;
  born_at: Date;
  stored_at: Date;
  reconsume: number;
  origin_topic: string | null;
}

/** A consumer group's retry settings. */
export interface GroupSettings {
  broadcasting: boolean;
  maxRetries: number;
  backoffMs: number[];
  invisibleMs: number;
}

/** One queue of one topic. */
export interface QueueRef {
  topic: string;
  queueId: number;
}

/** A delivery handed to a consumer. */
export interface Delivery {
  message: MessageRow;
  deliveries: number;
  grp: string;
  /** The attempt before this one, when it ended unrecorded (not acked in time). */
  previous?: { at: Date; consumer: string | null };
}

/** What happened to one nacked or expired delivery. */
export type NackOutcome = 'retry' | 'dead' | 'unknown';

const PENDING_COLUMNS =
  'seq, kind, msg_id::text AS msg_id, topic, tag, keys, msg_group, props, body, born_at, deliver_at, reconsume, origin_topic, producer_group, check_count';

/** A pending row (delayed, retry, outbox or half message). */
export interface PendingRow {
  seq: string;
  kind: 'delay' | 'outbox' | 'retry' | 'half';
  msg_id: string;
  topic: string;
  tag: string | null;
  keys: string[];
  msg_group: string | null;
  props: Record<string, string>;
  body: Buffer;
  born_at: Date;
  deliver_at: Date;
  reconsume: number;
  origin_topic: string | null;
  producer_group: string | null;
  check_count: number;
}

/** A trace event to record. */
export interface TraceEvent {
  msgId: string;
  event: string;
  grp?: string | null;
  consumer?: string | null;
  detail?: string | null;
  /** When it happened, if not now. */
  at?: Date;
  /**
   * On an ending event (acked, failed, dead-lettered): when the attempt it ends was
   * delivered, for a first delivery that got no trace row of its own.
   */
  deliveredAt?: Date | null;
}

// pg_try_advisory_xact_lock key meaning "mq relay": one relay at a time keeps order.
const RELAY_LOCK = '7354696302';

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

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

/**
 * Message bodies as one binary parameter plus 1-based starts and lengths. node-pg sends a
 * Buffer parameter in binary, but a bytea[] as escaped hex text: twice the bytes on the
 * socket, a per-byte escape in JavaScript and a parse in PostgreSQL.
 */
function packBodies(bodies: readonly Buffer[]): {
  blob: Buffer;
  starts: number[];
  lengths: number[];
} {
  const starts: number[] = new Array(bodies.length);
  const lengths: number[] = new Array(bodies.length);
  let at = 1;
  for (let i = 0; i < bodies.length; i++) {
    const n = bodies[i]!.length;
    starts[i] = at;
    lengths[i] = n;
    at += n;
  }
  return { blob: Buffer.concat(bodies as Buffer[]), starts, lengths };
}

/** Keys as a JSON array, or null for none (the common case, no per-row parse). */
function keysParam(keys: readonly string[]): string | null {
  return keys.length === 0 ? null : JSON.stringify(keys);
}

/** Properties as JSON, or null for none. */
function propsParam(props: Record<string, string>): string | null {
  for (const _ in props) return JSON.stringify(props);
  return null;
}

/** SQL for a keys parameter `k` (jsonb or null) as text[]. */
const KEYS_SQL = (k: string) =>
  `CASE WHEN ${k} IS NULL THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(${k})) END`;

/** Runs `fn` in a transaction on a pooled client. */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  durable = true,
): Promise<T> {
  const client = await pool.connect();
  try {
    // Delivery bookkeeping (claims, acks, retries, relay moves) may commit without
    // waiting for the WAL flush: a crash can only undo the last few ms of it, which means
    // a redelivery (at-least-once), never a lost message. Appends stay durable.
    await client.query(durable ? 'BEGIN' : 'BEGIN; SET LOCAL synchronous_commit TO off');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** The PostgreSQL message store. */
export class PgMessageStore {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #topics = new Map<string, { record: TopicRecord; at: number }>();
  readonly #rr = new Map<string, number>();
  /**
   * Called after messages were appended to `topic` (before commit): the broker uses it to
   * wake long polls. NOTIFY is not sent inside append transactions because PostgreSQL
   * serialises the commits of notifying transactions, which defeats group commit.
   */
  onAppend: ((topic: string) => void) | undefined;
  #traceBuffer: TraceEvent[] = [];
  #traceTimer: NodeJS.Timeout | undefined;
  #traceWriting: Promise<void> = Promise.resolve();

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  /** The pool this store writes through. */
  get pool(): pg.Pool {
    return this.#pool;
  }

  // ---------------------------------------------------------------- topics

  /** Creates a topic and its queues; an existing topic is returned unchanged. */
  async createTopic(spec: {
    name: string;
    queues: number;
    ordered: boolean;
    internal?: boolean;
    maxBodyBytes: number;
    produceSecret: string | null;
    consumeSecret: string | null;
  }): Promise<{ record: TopicRecord; created: boolean }> {
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

  // ---------------------------------------------------------------- append

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
        topic = await this.requireTopic(m.topic);
        topics.set(m.topic, topic);
      }
      let queueId: number;
      if (m.group !== null && m.group !== '') {
        queueId = fnv1a(m.group) % topic.queues;
      } else {
        let chosen = rrChoice.get(m.topic);
        if (chosen === undefined) {
          const next = (this.#rr.get(m.topic) ?? Math.floor(Math.random() * topic.queues)) + 1;
          this.#rr.set(m.topic, next);
          chosen = next % topic.queues;
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
    for (const topic of new Set(cols.topic)) this.onAppend?.(topic);
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
      this.onAppend?.(slot.topic);
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

  /** Puts messages into the pending table (delayed, retry or half messages). */
  async addPending(
    db: pg.Pool | pg.PoolClient,
    kind: PendingRow['kind'],
    items: readonly (AppendInput & { deliverAt: Date; producerGroup?: string | null })[],
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
          if ((await this.topic(r.topic)) === undefined) {
            this.#logger.error(
              { topic: r.topic, id: r.msg_id },
              'mq relay: dropping a message for a topic that no longer exists',
            );
            continue;
          }
          ok.push(r);
        }
        await this.appendIn(
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
        const next = (this.#rr.get(head.topic) ?? Math.floor(Math.random() * head.queues)) + 1;
        this.#rr.set(head.topic, next);
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
          [head.topic, next % head.queues, limit],
        );
        const moved = rows[0]?.n ?? 0;
        const due = rows[0]?.due ?? 0;
        if (moved !== due) {
          // The queue row vanished (topic dropped meanwhile): undo, the general path decides.
          throw new Error(`mq relay: moved ${moved} of ${due} due messages of '${head.topic}'`);
        }
        if (moved > 0) this.onAppend?.(head.topic);
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

  // ---------------------------------------------------------------- half messages

  /**
   * Commits several half messages in one statement (one WAL flush for all; see
   * group-commit.ts). One result per id, in order: false for an id that is not a waiting
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

  // ---------------------------------------------------------------- groups and consumers

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

  /** Of `queues`, those with something to hand out to `grp` now (cheap pre-check). */
  async queuesWithWork(
    grp: string,
    queues: readonly QueueRef[],
    window: number,
  ): Promise<QueueRef[]> {
    if (queues.length === 0) return [];
    const { rows } = await this.#pool.query<{ topic: string; queue_id: number }>(
      `SELECT q.topic, q.queue_id
         FROM unnest($2::text[], $3::int[]) AS x(topic, queue_id)
         JOIN peak.mq_queues q ON q.topic = x.topic AND q.queue_id = x.queue_id
         LEFT JOIN peak.mq_offsets o ON o.grp = $1 AND o.topic = q.topic AND o.queue_id = q.queue_id
        WHERE o.pulled_offset IS NULL
           OR (o.pulled_offset < q.next_offset
               AND (SELECT count(*) FROM peak.mq_deliveries d
                     WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id) < $4)
           OR EXISTS (SELECT 1 FROM peak.mq_deliveries d
                       WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id AND d.visible_at <= now())`,
      [grp, queues.map((q) => q.topic), queues.map((q) => q.queueId), window],
    );
    return rows.map((r) => ({ topic: r.topic, queueId: r.queue_id }));
  }

  /**
   * Hands out up to `max` deliveries of one queue to a consumer: pulls new messages into
   * the group's delivery window (tag filter applied; ordered topics park a message behind
   * its group's earlier one), then claims visible deliveries for `invisibleMs`. Returns
   * nothing when another request holds this queue right now.
   */
  async claim(params: {
    grp: string;
    queue: QueueRef;
    consumerId: string;
    max: number;
    window: number;
    tags: readonly string[] | null;
    startFrom: 'earliest' | 'latest';
    invisibleMs: number;
    ordered: boolean;
  }): Promise<Delivery[]> {
    const { grp, queue, consumerId } = params;
    return inTransaction(
      this.#pool,
      async (c) => {
        // The offset row's lock makes this request the queue's only claimer; the count of
        // deliveries in the window rides along (stale by a concurrent ack at worst, which
        // only leaves less room this time).
        let locked = await c.query<{ pulled_offset: string; n: number }>(
          `SELECT pulled_offset::text,
                  (SELECT count(*) FROM peak.mq_deliveries d
                    WHERE d.grp = $1 AND d.topic = $2 AND d.queue_id = $3)::int AS n
             FROM peak.mq_offsets WHERE grp = $1 AND topic = $2 AND queue_id = $3
           FOR UPDATE SKIP LOCKED`,
          [grp, queue.topic, queue.queueId],
        );
        if (locked.rows.length === 0) {
          const inserted = await c.query(
            `INSERT INTO peak.mq_offsets (grp, topic, queue_id, pulled_offset)
           SELECT $1, $2, $3, CASE WHEN $4 = 'latest' THEN next_offset ELSE 0 END
             FROM peak.mq_queues WHERE topic = $2 AND queue_id = $3
           ON CONFLICT DO NOTHING`,
            [grp, queue.topic, queue.queueId, params.startFrom],
          );
          if (inserted.rowCount !== 1) return [];
          locked = await c.query(
            `SELECT pulled_offset::text,
                    (SELECT count(*) FROM peak.mq_deliveries d
                      WHERE d.grp = $1 AND d.topic = $2 AND d.queue_id = $3)::int AS n
               FROM peak.mq_offsets WHERE grp = $1 AND topic = $2 AND queue_id = $3 FOR UPDATE`,
            [grp, queue.topic, queue.queueId],
          );
        }
        const pulled = locked.rows[0]?.pulled_offset;
        if (pulled === undefined) return [];
        const inWindow = locked.rows[0]?.n ?? 0;
        if (params.max <= 0) return [];
        // Redeliveries and promoted (ordered) messages first, then fresh ones.
        // A redelivered first attempt whose delivery was never recorded (it timed out:
        // no ack or nack row carries it) comes back as prev_at / prev_consumer.
        const { rows: claimed } = await c.query<{
          queue_offset: string;
          deliveries: number;
          prev_at?: Date | null;
          prev_consumer?: string | null;
        }>(
          `WITH picked AS (
           SELECT queue_offset, delivered_at, consumer_id, deliveries FROM peak.mq_deliveries
            WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND visible_at <= now()
            ORDER BY visible_at LIMIT $4 FOR UPDATE)
         UPDATE peak.mq_deliveries d
            SET visible_at = now() + make_interval(secs => $5::float8 / 1000),
                deliveries = d.deliveries + 1, consumer_id = $6, delivered_at = now()
           FROM picked
          WHERE d.grp = $1 AND d.topic = $2 AND d.queue_id = $3 AND d.queue_offset = picked.queue_offset
         RETURNING d.queue_offset::text, d.deliveries,
                   CASE WHEN picked.deliveries = 1 THEN picked.delivered_at END AS prev_at,
                   picked.consumer_id AS prev_consumer`,
          [grp, queue.topic, queue.queueId, params.max, params.invisibleMs, consumerId],
        );
        const room = Math.min(params.window - inWindow, params.max - claimed.length);
        // Fresh messages are read whole here, so only redeliveries need a second read. (The
        // ORDER BY casts: a bare queue_offset would name the text output column.)
        const freshRows = new Map<string, MessageRow>();
        const redelivered = claimed.map((r) => r.queue_offset);
        if (room > 0) {
          const { rows: fresh } = await c.query<MessageRow>(
            `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
                    born_at, stored_at, reconsume, origin_topic
               FROM peak.mq_messages
              WHERE topic = $1 AND queue_id = $2 AND queue_offset >= $3
              ORDER BY queue_offset::bigint LIMIT $4`,
            [queue.topic, queue.queueId, pulled, room],
          );
          for (const m of fresh) freshRows.set(m.queue_offset, m);
          if (fresh.length > 0) {
            const blocked = new Set<string>();
            if (params.ordered) {
              const { rows: busy } = await c.query<{ msg_group: string }>(
                `SELECT DISTINCT msg_group FROM peak.mq_deliveries
                WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND msg_group IS NOT NULL`,
                [grp, queue.topic, queue.queueId],
              );
              for (const b of busy) blocked.add(b.msg_group);
            }
            const offs: string[] = [];
            const ids: string[] = [];
            const groups: (string | null)[] = [];
            const waiting: boolean[] = [];
            for (const m of fresh) {
              if (params.tags !== null && (m.tag === null || !params.tags.includes(m.tag)))
                continue;
              offs.push(m.queue_offset);
              ids.push(m.msg_id);
              groups.push(m.msg_group);
              const parked = params.ordered && m.msg_group !== null && blocked.has(m.msg_group);
              waiting.push(parked);
              if (params.ordered && m.msg_group !== null) blocked.add(m.msg_group);
            }
            if (offs.length > 0) {
              // Fresh messages are claimed as they enter the window; parked ones wait
              // (visible_at NULL) behind their group's earlier message.
              const { rows: taken } = await c.query<{ queue_offset: string; deliveries: number }>(
                `INSERT INTO peak.mq_deliveries
                 (grp, topic, queue_id, queue_offset, msg_id, msg_group, visible_at, deliveries, consumer_id,
                  delivered_at)
               SELECT $1, $2, $3, o, i, g,
                      CASE WHEN w THEN NULL ELSE now() + make_interval(secs => $8::float8 / 1000) END,
                      CASE WHEN w THEN 0 ELSE 1 END, CASE WHEN w THEN NULL ELSE $9 END,
                      CASE WHEN w THEN NULL ELSE now() END
                 FROM unnest($4::bigint[], $5::bigint[], $6::text[], $7::bool[]) AS x(o, i, g, w)
               ON CONFLICT DO NOTHING
               RETURNING queue_offset::text, deliveries`,
                [
                  grp,
                  queue.topic,
                  queue.queueId,
                  offs,
                  ids,
                  groups,
                  waiting,
                  params.invisibleMs,
                  consumerId,
                ],
              );
              for (const t of taken) if (t.deliveries > 0) claimed.push(t);
            }
            const last = fresh[fresh.length - 1]!.queue_offset;
            await c.query(
              'UPDATE peak.mq_offsets SET pulled_offset = $4 WHERE grp = $1 AND topic = $2 AND queue_id = $3',
              [grp, queue.topic, queue.queueId, (BigInt(last) + 1n).toString()],
            );
          }
        }
        if (claimed.length === 0) return [];
        const messages: MessageRow[] = [];
        if (redelivered.length > 0) {
          const { rows } = await c.query<MessageRow>(
            `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
                  born_at, stored_at, reconsume, origin_topic
             FROM peak.mq_messages WHERE topic = $1 AND queue_id = $2 AND queue_offset = ANY($3::bigint[])`,
            [queue.topic, queue.queueId, redelivered],
          );
          messages.push(...rows);
        }
        for (const r of claimed) {
          const m = freshRows.get(r.queue_offset);
          if (m !== undefined) messages.push(m);
        }
        messages.sort((a, b) =>
          a.queue_offset.length !== b.queue_offset.length
            ? a.queue_offset.length - b.queue_offset.length
            : a.queue_offset < b.queue_offset
              ? -1
              : a.queue_offset > b.queue_offset
                ? 1
                : 0,
        );
        const count = new Map(claimed.map((r) => [r.queue_offset, r]));
        const found = new Set(messages.map((m) => m.queue_offset));
        const gone = claimed.filter((r) => !found.has(r.queue_offset)).map((r) => r.queue_offset);
        if (gone.length > 0) {
          // Dropped by retention while waiting: nothing left to deliver.
          await c.query(
            'DELETE FROM peak.mq_deliveries WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND queue_offset = ANY($4::bigint[])',
            [grp, queue.topic, queue.queueId, gone],
          );
        }
        return messages.map((m) => {
          const r = count.get(m.queue_offset);
          const prev = r?.prev_at;
          return {
            message: m,
            deliveries: r?.deliveries ?? 1,
            grp,
            ...(prev === null || prev === undefined
              ? {}
              : { previous: { at: prev, consumer: r?.prev_consumer ?? null } }),
          };
        });
      },
      false,
    );
  }

  /** Acks deliveries; in ordered topics the next message of each group becomes visible. */
  async ack(
    grp: string,
    refs: readonly (QueueRef & { offset: string })[],
  ): Promise<{ acked: { msgId: string; deliveredAt: Date | null }[] }> {
    if (refs.length === 0) return { acked: [] };
    let ordered: string[] = [];
    return inTransaction(
      this.#pool,
      async (c) => {
        ordered = await this.#lockOrderedQueues(c, grp, refs);
        const { rows } = await c.query<{
          topic: string;
          queue_id: number;
          msg_id: string;
          msg_group: string | null;
          delivered_at: Date | null;
        }>(
          `DELETE FROM peak.mq_deliveries d
          USING unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, q, o)
          WHERE d.grp = $1 AND d.topic = x.t AND d.queue_id = x.q AND d.queue_offset = x.o
          RETURNING d.topic, d.queue_id, d.msg_id::text, d.msg_group,
                    CASE WHEN d.deliveries = 1 THEN d.delivered_at END AS delivered_at`,
          [grp, refs.map((r) => r.topic), refs.map((r) => r.queueId), refs.map((r) => r.offset)],
        );
        await this.#promote(c, grp, rows);
        return { acked: rows.map((r) => ({ msgId: r.msg_id, deliveredAt: r.delivered_at })) };
      },
      false,
    ).then((r) => {
      // A promoted message is new work: wake the long-polls waiting on its topic.
      for (const t of ordered) this.onAppend?.(t);
      return r;
    });
  }

  /**
   * Ordered topics only: takes the offset rows (the lock a claim holds while it parks
   * messages behind their group's head) of the queues `refs` touch, in one global order.
   * Without it an ack could delete a group's head after a concurrent claim had seen it
   * and before that claim's parked message committed: the ack would promote nothing and
   * the parked message would wait for good. Returns the ordered topics touched.
   */
  async #lockOrderedQueues(
    c: pg.PoolClient,
    grp: string,
    refs: readonly QueueRef[],
  ): Promise<string[]> {
    const ordered: string[] = [];
    for (const t of new Set(refs.map((r) => r.topic)))
      if ((await this.topic(t))?.ordered === true) ordered.push(t);
    if (ordered.length === 0) return ordered;
    const keys = [
      ...new Map(
        refs
          .filter((r) => ordered.includes(r.topic))
          .map((r) => [`${r.topic}\u0000${r.queueId}`, r]),
      ).values(),
    ];
    await c.query(
      `SELECT 1 FROM peak.mq_offsets o
         JOIN unnest($2::text[], $3::int[]) AS x(t, q) ON o.topic = x.t AND o.queue_id = x.q
        WHERE o.grp = $1
        ORDER BY o.topic, o.queue_id
          FOR UPDATE OF o`,
      [grp, keys.map((k) => k.topic), keys.map((k) => k.queueId)],
    );
    return ordered;
  }

  async #promote(
    c: pg.PoolClient,
    grp: string,
    rows: readonly { topic: string; queue_id: number; msg_group: string | null }[],
  ): Promise<void> {
    const seen = new Set<string>();
    for (const r of rows) {
      if (r.msg_group === null) continue;
      const key = `${r.topic}\u0000${r.queue_id}\u0000${r.msg_group}`;
      if (seen.has(key)) continue;
      seen.add(key);
      await c.query(
        `UPDATE peak.mq_deliveries SET visible_at = now()
          WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND queue_offset = (
            SELECT min(queue_offset) FROM peak.mq_deliveries
             WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND msg_group = $4)
            AND visible_at IS NULL`,
        [grp, r.topic, r.queue_id, r.msg_group],
      );
    }
  }

  /**
   * Fails a delivery. Clustering groups on normal topics send it to the group's retry
   * topic after `backoff`; ordered topics and broadcasting consumers retry it in place
   * (its group stays blocked). After `maxRetries` retries it goes to the DLQ.
   */
  async nack(
    grp: string,
    deadLetterGroup: string,
    ref: QueueRef & { offset: string },
    settings: GroupSettings,
    inPlace: boolean,
    reason: string,
    delayOverrideMs?: number,
  ): Promise<{
    outcome: NackOutcome;
    msgId?: string;
    attempt?: number;
    delayMs?: number;
    deliveredAt?: Date | null;
  }> {
    return inTransaction(
      this.#pool,
      async (c) => {
        await this.#lockOrderedQueues(c, grp, [ref]);
        const { rows: drows } = await c.query<{
          deliveries: number;
          msg_id: string;
          msg_group: string | null;
          delivered_at: Date | null;
        }>(
          `SELECT deliveries, msg_id::text, msg_group,
                  CASE WHEN deliveries = 1 THEN delivered_at END AS delivered_at
             FROM peak.mq_deliveries
          WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND queue_offset = $4 FOR UPDATE`,
          [grp, ref.topic, ref.queueId, ref.offset],
        );
        const d = drows[0];
        if (d === undefined) return { outcome: 'unknown' as const };
        const { rows: mrows } = await c.query<MessageRow>(
          `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
                born_at, stored_at, reconsume, origin_topic
           FROM peak.mq_messages WHERE topic = $1 AND queue_id = $2 AND queue_offset = $3`,
          [ref.topic, ref.queueId, ref.offset],
        );
        const m = mrows[0];
        const attempt = (m?.reconsume ?? 0) + d.deliveries;
        const dead = attempt > settings.maxRetries;
        const ladder = settings.backoffMs;
        const delayMs =
          delayOverrideMs ?? ladder[Math.min(attempt - 1, ladder.length - 1)] ?? 10_000;
        if (m === undefined || dead) {
          await c.query(
            'DELETE FROM peak.mq_deliveries WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND queue_offset = $4',
            [grp, ref.topic, ref.queueId, ref.offset],
          );
          if (m !== undefined) await this.#toDlq(c, deadLetterGroup, m, attempt, reason);
          await this.#promote(c, grp, [
            { topic: ref.topic, queue_id: ref.queueId, msg_group: d.msg_group },
          ]);
          return {
            outcome: 'dead' as const,
            msgId: d.msg_id,
            attempt,
            deliveredAt: d.delivered_at,
          };
        }
        if (inPlace) {
          await c.query(
            `UPDATE peak.mq_deliveries SET visible_at = now() + make_interval(secs => $5::float8 / 1000),
                    delivered_at = NULL
            WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND queue_offset = $4`,
            [grp, ref.topic, ref.queueId, ref.offset, delayMs],
          );
        } else {
          await c.query(
            'DELETE FROM peak.mq_deliveries WHERE grp = $1 AND topic = $2 AND queue_id = $3 AND queue_offset = $4',
            [grp, ref.topic, ref.queueId, ref.offset],
          );
          await this.addPending(c, 'retry', [
            {
              topic: TopicNames.retry(deadLetterGroup),
              msgId: BigInt(m.msg_id),
              tag: m.tag,
              keys: m.keys,
              group: m.msg_group,
              props: m.props,
              body: m.body,
              bornAt: m.born_at,
              reconsume: attempt,
              originTopic: m.origin_topic ?? m.topic,
              deliverAt: new Date(Date.now() + delayMs),
            },
          ]);
        }
        return {
          outcome: 'retry' as const,
          msgId: d.msg_id,
          attempt,
          delayMs,
          deliveredAt: d.delivered_at,
        };
      },
      false,
    );
  }

  async #toDlq(
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
  async listDlq(
    grp: string,
    limit: number,
  ): Promise<
    (Omit<MessageRow, 'queue_id' | 'queue_offset' | 'stored_at' | 'origin_topic'> & {
      dead_at: Date;
      reason: string | null;
    })[]
  > {
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
      await this.#ensureRetryTopic(c, grp);
      await this.addPending(
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

  async #ensureRetryTopic(c: pg.PoolClient, grp: string): Promise<void> {
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
    return inTransaction(this.#pool, (c) => this.#ensureRetryTopic(c, grp));
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

  /** Backlog per queue of a group on a topic: stored but not yet acked. */
  async backlog(
    grp: string,
    topic: string,
  ): Promise<
    { queueId: number; maxOffset: string; committed: string; backlog: number; inflight: number }[]
  > {
    const { rows } = await this.#pool.query(
      `SELECT q.queue_id, q.next_offset::text AS max_offset,
              coalesce((SELECT min(queue_offset) FROM peak.mq_deliveries d
                         WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id), o.pulled_offset, 0)::text AS committed,
              (SELECT count(*) FROM peak.mq_deliveries d
                WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id AND d.visible_at > now())::int AS inflight
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
  async subscriptions(): Promise<{ grp: string; topic: string }[]> {
    const { rows } = await this.#pool.query(
      'SELECT DISTINCT grp, topic FROM peak.mq_offsets ORDER BY grp, topic',
    );
    return rows;
  }

  // ---------------------------------------------------------------- query and trace

  /**
   * Records trace events. They are buffered and written in one multi-row INSERT every
   * 50 ms (async commit), off the send and receive paths; best effort: a failed write is
   * logged, never fails the caller.
   */
  trace(events: readonly TraceEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    this.#traceBuffer.push(...events);
    if (this.#traceBuffer.length >= 5000) return this.flushTrace();
    this.#traceTimer ??= setTimeout(() => void this.flushTrace(), 50);
    return Promise.resolve();
  }

  /** Writes buffered trace events now. */
  async flushTrace(): Promise<void> {
    if (this.#traceTimer !== undefined) clearTimeout(this.#traceTimer);
    this.#traceTimer = undefined;
    await this.#traceWriting;
    const events = this.#traceBuffer;
    if (events.length === 0) return;
    this.#traceBuffer = [];
    this.#traceWriting = inTransaction(
      this.#pool,
      async (c) => {
        await c.query(
          `INSERT INTO peak.mq_trace (msg_id, at, event, grp, consumer, detail, delivered_at)
           SELECT i, coalesce(a, clock_timestamp()), e, g, c, d, da
             FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                         $7::timestamptz[]) AS x(i, a, e, g, c, d, da)`,
          [
            events.map((e) => e.msgId),
            events.map((e) => e.at ?? null),
            events.map((e) => e.event),
            events.map((e) => e.grp ?? null),
            events.map((e) => e.consumer ?? null),
            events.map((e) => e.detail ?? null),
            events.map((e) => e.deliveredAt ?? null),
          ],
        );
      },
      false,
    ).catch((err) => this.#logger.warn({ err }, 'mq: could not record trace events'));
    await this.#traceWriting;
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

  /** A pending (delayed, retry, outbox, half) copy of a message, if any. */
  async pendingById(id: string): Promise<PendingRow[]> {
    const { rows } = await this.#pool.query<PendingRow>(
      `SELECT ${PENDING_COLUMNS} FROM peak.mq_pending WHERE msg_id = $1`,
      [id],
    );
    return rows;
  }

  /** Messages carrying a key, newest first. */
  async byKey(key: string, topic: string | undefined, limit: number): Promise<MessageRow[]> {
    const { rows } = await this.#pool.query<MessageRow>(
      `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
              born_at, stored_at, reconsume, origin_topic
         FROM peak.mq_messages WHERE keys @> ARRAY[$1]::text[] AND keys <> '{}' AND ($2::text IS NULL OR topic = $2)
        ORDER BY stored_at DESC LIMIT $3`,
      [key, topic ?? null, limit],
    );
    return rows;
  }

  /** Messages of a topic stored in [from, to), optionally with one tag, oldest first. */
  async byTime(
    topic: string,
    tag: string | undefined,
    from: Date,
    to: Date,
    limit: number,
  ): Promise<MessageRow[]> {
    const { rows } = await this.#pool.query<MessageRow>(
      `SELECT topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props, body,
              born_at, stored_at, reconsume, origin_topic
         FROM peak.mq_messages
        WHERE topic = $1 AND stored_at >= $2 AND stored_at < $3 AND ($4::text IS NULL OR tag = $4)
        ORDER BY stored_at, queue_id, queue_offset::bigint LIMIT $5`,
      [topic, from, to, tag ?? null, limit],
    );
    return rows;
  }

  /** Trace events of a message, oldest first. */
  async traceOf(id: string): Promise<
    {
      at: Date;
      event: string;
      grp: string | null;
      consumer: string | null;
      detail: string | null;
      delivered_at: Date | null;
    }[]
  > {
    const { rows } = await this.#pool.query(
      'SELECT at, event, grp, consumer, detail, delivered_at FROM peak.mq_trace WHERE msg_id = $1 ORDER BY at',
      [id],
    );
    return rows;
  }

  /**
   * Deliveries a consumer of `grp` holds now (delivered, not acked, not timed out), over the
   * group's topics and its retry topic.
   */
  async inflightOfConsumer(grp: string, consumerId: string): Promise<number> {
    const { rows } = await this.#pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM peak.mq_deliveries
        WHERE grp = $1 AND consumer_id = $2 AND visible_at > now()`,
      [grp, consumerId],
    );
    return rows[0]?.n ?? 0;
  }

  /** First deliveries of these stored copies still in flight (no trace row yet). */
  async inflightFirst(
    copies: readonly { topic: string; queue_id: number; queue_offset: string }[],
  ): Promise<{ grp: string; consumer_id: string | null; delivered_at: Date }[]> {
    if (copies.length === 0) return [];
    const { rows } = await this.#pool.query(
      `SELECT d.grp, d.consumer_id, d.delivered_at FROM peak.mq_deliveries d
         JOIN unnest($1::text[], $2::int[], $3::bigint[]) AS x(t, q, o)
           ON d.topic = x.t AND d.queue_id = x.q AND d.queue_offset = x.o
        WHERE d.deliveries = 1 AND d.delivered_at IS NOT NULL`,
      [
        copies.map((c) => c.topic),
        copies.map((c) => c.queue_id),
        copies.map((c) => c.queue_offset),
      ],
    );
    return rows;
  }

  /** A group's dead-lettered copy of a message, if any. */
  async dlqById(
    id: string,
  ): Promise<{ grp: string; dead_at: Date; reason: string | null; reconsume: number }[]> {
    const { rows } = await this.#pool.query(
      'SELECT grp, dead_at, reason, reconsume FROM peak.mq_dlq WHERE msg_id = $1',
      [id],
    );
    return rows;
  }

  // ---------------------------------------------------------------- retention

  /**
   * Creates the daily partitions of the message and trace tables from yesterday to
   * `aheadDays` ahead, and drops whole partitions that ended more than `retentionMs` ago.
   */
  async maintainPartitions(
    retentionMs: number,
    aheadDays = 2,
  ): Promise<{ created: string[]; dropped: string[] }> {
    const created: string[] = [];
    const dropped: string[] = [];
    const day = 86_400_000;
    const today = Math.floor(Date.now() / day) * day;
    for (const table of ['mq_messages', 'mq_trace']) {
      for (let d = -1; d <= aheadDays; d++) {
        const from = new Date(today + d * day);
        const to = new Date(today + (d + 1) * day);
        const name = `${table}_p${from.toISOString().slice(0, 10).replaceAll('-', '')}`;
        const exists = await this.#pool.query(
          "SELECT to_regclass('peak.' || $1) IS NOT NULL AS ok",
          [name],
        );
        if (exists.rows[0]?.ok === true) continue;
        try {
          await this.#pool.query(
            `CREATE TABLE peak.${name} PARTITION OF peak.${table} FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`,
          );
          created.push(name);
        } catch (err) {
          // Rows for that day already sit in the DEFAULT partition (the broker was down
          // at midnight); they stay there and are served from it.
          this.#logger.warn({ err, partition: name }, 'mq: could not create partition');
        }
      }
      const { rows } = await this.#pool.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = ('peak.' || $1)::regclass`,
        [table],
      );
      for (const r of rows) {
        const m = /_p(\d{4})(\d{2})(\d{2})$/.exec(r.name);
        if (m === null) continue;
        const end = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) + day;
        if (end <= Date.now() - retentionMs) {
          await this.#pool.query(`DROP TABLE peak.${r.name}`);
          dropped.push(r.name);
        }
      }
    }
    return { created, dropped };
  }
}
