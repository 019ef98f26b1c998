/**
 * Claims: how a consumer group reads a queue. A claim hands out fresh messages at or after
 * the group's `pulled_offset` (bounded by a window) with an invisibility timeout. On a
 * normal topic the fresh messages of one claim are recorded as ONE `mq_claims` row (the
 * offset range, the offsets acked so far); a claim that times out with offsets unacked is
 * expanded into per-message `mq_deliveries` rows, which carry redeliveries. On an ordered
 * topic every message gets a delivery row, and one whose message group already has a
 * delivery waits (visible_at NULL) until the one before it is acked or dead-lettered: a
 * failing message blocks its own group, never the queue.
 */
import type pg from 'pg';
import type {
  ClaimRequest,
  DeliveredRow,
  Delivery,
  QueueRef,
  QueueWork,
} from '../message-records.js';
import { CLAIM_UNACKED_SQL, EXPAND_EXPIRED_CLAIMS_SQL, MAX_CLAIM_SPAN } from './claim-rows.js';
import { inTransaction } from './transaction.js';

/** The claim's lock on a group's queue, with what the queue holds in flight. */
interface QueueLock {
  pulled_offset: string;
  /** Per-message delivery rows. */
  rows: number;
  /** Offsets in claim rows not acked yet. */
  claimed: number;
  /** Whether a claim row timed out (to expand into delivery rows). */
  expired: boolean;
}

// The offset row of (group $1, topic $2, queue $3) and what is in flight there; a claim
// locks it (the caller appends FOR UPDATE [SKIP LOCKED]).
const LOCK_SQL = `SELECT pulled_offset::text,
       (SELECT count(*) FROM peak.mq_deliveries d
         WHERE d.grp = $1 AND d.topic = $2 AND d.queue_id = $3)::int AS rows,
       (SELECT coalesce(sum(${CLAIM_UNACKED_SQL('c')}), 0) FROM peak.mq_claims c
         WHERE c.grp = $1 AND c.topic = $2 AND c.queue_id = $3)::int AS claimed,
       EXISTS (SELECT 1 FROM peak.mq_claims c
                WHERE c.grp = $1 AND c.topic = $2 AND c.queue_id = $3 AND c.visible_at <= now()) AS expired
  FROM peak.mq_offsets WHERE grp = $1 AND topic = $2 AND queue_id = $3`;

// A message as delivered: the body as base64 text without the line breaks PostgreSQL puts
// every 76 characters (it leaves the broker in base64; bytea's hex text would be parsed
// into bytes and encoded again in Node).
const DELIVERED_COLUMNS = `topic, queue_id, queue_offset::text, msg_id::text, tag, keys, msg_group, props,
       replace(encode(body, 'base64'), E'\\n', '') AS body, born_at, stored_at, reconsume, origin_topic`;

// The common claim in ONE statement, committed without waiting for the WAL flush (the
// set_config is local to the statement's own transaction, read at its commit): lock the
// group's queue row (SKIP LOCKED), read the fresh messages after its pulled offset, record
// them as one claim row and move the offset past them. It goes ahead only when the queue
// holds no delivery row and no timed-out claim row (`fast`); otherwise, or when the group
// has no offset row yet (`has_row` false), the caller runs the full claim transaction.
// `locked` says whether this statement held the queue row (if not and `has_row`, another
// request holds it: nothing to hand out now).
// $1 group, $2 topic, $3 queue, $4 window, $5 most messages, $6 tags (NULL: all),
// $7 invisible ms, $8 consumer. Rows: one per message handed out, or one with a NULL
// queue_offset when none is.
const FAST_CLAIM_SQL = `
  WITH lk AS MATERIALIZED (${LOCK_SQL} FOR UPDATE SKIP LOCKED),
  go AS MATERIALIZED (
    SELECT pulled_offset::bigint AS pulled,
           least($4::int - rows - claimed, $5::int, ${MAX_CLAIM_SPAN}) AS room
      FROM lk WHERE rows = 0 AND NOT expired),
  m AS MATERIALIZED (
    SELECT queue_offset AS off, msg_id, tag, keys, msg_group, props, body, born_at, stored_at,
           reconsume, origin_topic
      FROM peak.mq_messages
     WHERE topic = $2 AND queue_id = $3 AND queue_offset >= (SELECT pulled FROM go)
     ORDER BY queue_offset LIMIT (SELECT greatest(room, 0) FROM go)),
  f AS MATERIALIZED (
    SELECT * FROM m WHERE off < (SELECT min(off) FROM m) + ${MAX_CLAIM_SPAN}),
  agg AS MATERIALIZED (
    SELECT min(off) AS first, max(off) + 1 AS next,
           array_agg((off - (SELECT min(off) FROM f))::int ORDER BY off)
             FILTER (WHERE $6::text[] IS NULL OR tag = ANY ($6::text[])) AS delivered
      FROM f HAVING count(*) > 0),
  claim AS (
    INSERT INTO peak.mq_claims
      (grp, topic, queue_id, first_offset, span, delivered, visible_at, consumer_id, delivered_at)
    SELECT $1, $2, $3, first, (next - first)::int,
           CASE WHEN cardinality(delivered) = next - first THEN NULL ELSE delivered END,
           now() + make_interval(secs => $7::float8 / 1000), $8, now()
      FROM agg WHERE delivered IS NOT NULL
    RETURNING 1),
  upd AS (
    UPDATE peak.mq_offsets o SET pulled_offset = agg.next FROM agg
     WHERE o.grp = $1 AND o.topic = $2 AND o.queue_id = $3
    RETURNING 1),
  h AS (
    SELECT (SELECT count(*) FROM go)::int AS fast, (SELECT count(*) FROM lk)::int AS locked,
           EXISTS (SELECT 1 FROM peak.mq_offsets WHERE grp = $1 AND topic = $2 AND queue_id = $3) AS has_row,
           set_config('synchronous_commit', 'off', true) AS async)
  SELECT h.fast, h.locked, h.has_row, $2::text AS topic, $3::int AS queue_id, f.off::text AS queue_offset,
         f.msg_id::text, f.tag, f.keys, f.msg_group, f.props,
         replace(encode(f.body, 'base64'), E'\\n', '') AS body, f.born_at, f.stored_at, f.reconsume,
         f.origin_topic
    FROM h LEFT JOIN f ON $6::text[] IS NULL OR f.tag = ANY ($6::text[])
   ORDER BY f.off`;

/** Hands out deliveries. */
export class PgDeliveryClaims {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /**
   * Of `queues`, those with something to hand out to `grp` now (cheap pre-check), and when
   * the next of its deliveries there now invisible becomes visible again, if any.
   */
  async queuesWithWork(
    grp: string,
    queues: readonly QueueRef[],
    window: number,
  ): Promise<QueueWork> {
    if (queues.length === 0) return { ready: [], nextVisibleAt: undefined };
    const { rows } = await this.#pool.query<{
      topic: string | null;
      queue_id: number | null;
      next_visible: Date | null;
    }>(
      `WITH x AS (SELECT * FROM unnest($2::text[], $3::int[]) AS x(topic, queue_id))
       SELECT q.topic, q.queue_id, NULL::timestamptz AS next_visible
         FROM x JOIN peak.mq_queues q ON q.topic = x.topic AND q.queue_id = x.queue_id
         LEFT JOIN peak.mq_offsets o ON o.grp = $1 AND o.topic = q.topic AND o.queue_id = q.queue_id
        WHERE o.pulled_offset IS NULL
           OR (o.pulled_offset < q.next_offset
               AND (SELECT count(*) FROM peak.mq_deliveries d
                     WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id)
                 + (SELECT coalesce(sum(${CLAIM_UNACKED_SQL('c')}), 0) FROM peak.mq_claims c
                     WHERE c.grp = $1 AND c.topic = q.topic AND c.queue_id = q.queue_id) < $4)
           OR EXISTS (SELECT 1 FROM peak.mq_deliveries d
                       WHERE d.grp = $1 AND d.topic = q.topic AND d.queue_id = q.queue_id AND d.visible_at <= now())
           OR EXISTS (SELECT 1 FROM peak.mq_claims c
                       WHERE c.grp = $1 AND c.topic = q.topic AND c.queue_id = q.queue_id AND c.visible_at <= now())
       UNION ALL
       SELECT NULL, NULL, least(
                (SELECT min(d.visible_at) FROM peak.mq_deliveries d JOIN x ON d.topic = x.topic AND d.queue_id = x.queue_id
                  WHERE d.grp = $1 AND d.visible_at > now()),
                (SELECT min(c.visible_at) FROM peak.mq_claims c JOIN x ON c.topic = x.topic AND c.queue_id = x.queue_id
                  WHERE c.grp = $1 AND c.visible_at > now()))`,
      [grp, queues.map((q) => q.topic), queues.map((q) => q.queueId), window],
    );
    const ready: QueueRef[] = [];
    let nextVisibleAt: Date | undefined;
    for (const r of rows) {
      if (r.topic !== null && r.queue_id !== null)
        ready.push({ topic: r.topic, queueId: r.queue_id });
      else if (r.next_visible !== null) nextVisibleAt = r.next_visible;
    }
    return { ready, nextVisibleAt };
  }

  /**
   * Hands out up to `max` deliveries of one queue to a consumer: pulls new messages into
   * the group's delivery window (tag filter applied; ordered topics park a message behind
   * its group's earlier one), then claims visible deliveries for `invisibleMs`. Returns
   * nothing when another request holds this queue right now.
   */
  async claim(params: ClaimRequest): Promise<Delivery[]> {
    const { grp, queue, consumerId } = params;
    if (params.max <= 0) return [];
    if (!params.ordered) {
      const { rows } = await this.#pool.query<
        DeliveredRow & {
          fast: number;
          locked: number;
          has_row: boolean;
          queue_offset: string | null;
        }
      >(FAST_CLAIM_SQL, [
        grp,
        queue.topic,
        queue.queueId,
        params.window,
        params.max,
        params.tags,
        params.invisibleMs,
        consumerId,
      ]);
      const head = rows[0];
      if (head !== undefined && head.fast > 0) {
        const out: Delivery[] = [];
        for (const r of rows) {
          if (r.queue_offset === null) continue;
          const { fast: _f, locked: _l, has_row: _h, ...message } = r;
          out.push({ message: message as DeliveredRow, deliveries: 1, grp });
        }
        return out;
      }
      // Another request holds the queue right now.
      if (head !== undefined && head.locked === 0 && head.has_row) return [];
      // Otherwise (timed-out claims or delivery rows to hand out, or the group's first
      // claim of this queue): the full claim below.
    }
    return inTransaction(
      this.#pool,
      async (c) => {
        // The offset row's lock makes this request the queue's only claimer; the count of
        // deliveries in the window rides along (stale by a concurrent ack at worst, which
        // only leaves less room this time).
        let locked = await c.query<QueueLock>(`${LOCK_SQL} FOR UPDATE SKIP LOCKED`, [
          grp,
          queue.topic,
          queue.queueId,
        ]);
        if (locked.rows.length === 0) {
          const inserted = await c.query(
            `INSERT INTO peak.mq_offsets (grp, topic, queue_id, pulled_offset)
           SELECT $1, $2, $3, CASE WHEN $4 = 'latest' THEN next_offset ELSE 0 END
             FROM peak.mq_queues WHERE topic = $2 AND queue_id = $3
           ON CONFLICT DO NOTHING`,
            [grp, queue.topic, queue.queueId, params.startFrom],
          );
          if (inserted.rowCount !== 1) return [];
          locked = await c.query(`${LOCK_SQL} FOR UPDATE`, [grp, queue.topic, queue.queueId]);
        }
        const lock = locked.rows[0];
        if (lock === undefined) return [];
        const pulled = lock.pulled_offset;
        const inWindow = lock.rows + lock.claimed;
        let rows = lock.rows;
        if (lock.expired) {
          // Claims not fully acked in time: their unacked offsets become delivery rows,
          // visible now, and are redelivered below like any timed-out delivery.
          const expanded = await c.query(EXPAND_EXPIRED_CLAIMS_SQL, [
            grp,
            queue.topic,
            queue.queueId,
          ]);
          rows += expanded.rowCount ?? 0;
        }
        // Redeliveries and promoted (ordered) messages first, then fresh ones.
        // A redelivered first attempt whose delivery was never recorded (it timed out:
        // no ack or nack row carries it) comes back as prev_at / prev_consumer.
        const claimed: {
          queue_offset: string;
          deliveries: number;
          prev_at?: Date | null;
          prev_consumer?: string | null;
        }[] = [];
        if (rows > 0) {
          const picked = await c.query<{
            queue_offset: string;
            deliveries: number;
            prev_at: Date | null;
            prev_consumer: string | null;
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
          claimed.push(...picked.rows);
        }
        const room = Math.min(
          params.window - inWindow,
          params.max - claimed.length,
          MAX_CLAIM_SPAN,
        );
        // Fresh messages are read whole here, so only redeliveries need a second read. (The
        // ORDER BY casts: a bare queue_offset would name the text output column.)
        const freshRows = new Map<string, DeliveredRow>();
        const redelivered = claimed.map((r) => r.queue_offset);
        if (room > 0) {
          const { rows: read } = await c.query<DeliveredRow>(
            `SELECT ${DELIVERED_COLUMNS}
               FROM peak.mq_messages
              WHERE topic = $1 AND queue_id = $2 AND queue_offset >= $3
              ORDER BY queue_offset::bigint LIMIT $4`,
            [queue.topic, queue.queueId, pulled, room],
          );
          // A claim spans at most MAX_CLAIM_SPAN offsets (a gap left by retention aside,
          // it spans no more than it read).
          const base = read.length === 0 ? 0n : BigInt(read[0]!.queue_offset);
          const fresh = read.filter((m) => BigInt(m.queue_offset) - base < BigInt(MAX_CLAIM_SPAN));
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
            const last = fresh[fresh.length - 1]!.queue_offset;
            const next = (BigInt(last) + 1n).toString();
            if (params.ordered) {
              await this.#insertDeliveries(c, params, fresh, blocked, claimed);
              await c.query(
                'UPDATE peak.mq_offsets SET pulled_offset = $4 WHERE grp = $1 AND topic = $2 AND queue_id = $3',
                [grp, queue.topic, queue.queueId, next],
              );
            } else {
              // One claim row for the whole range (the offsets a tag filter let through,
              // relative to the first, when it skipped some), and the group moves past it.
              const first = BigInt(fresh[0]!.queue_offset);
              const delivered: number[] = [];
              for (const m of fresh) {
                if (params.tags !== null && (m.tag === null || !params.tags.includes(m.tag)))
                  continue;
                delivered.push(Number(BigInt(m.queue_offset) - first));
                claimed.push({ queue_offset: m.queue_offset, deliveries: 1 });
              }
              const span = Number(BigInt(next) - first);
              await c.query(
                `WITH claim AS (
                   INSERT INTO peak.mq_claims
                     (grp, topic, queue_id, first_offset, span, delivered, visible_at, consumer_id, delivered_at)
                   SELECT $1, $2, $3, $5, $6, $7::int[], now() + make_interval(secs => $8::float8 / 1000), $9, now()
                    WHERE $10::int > 0
                   RETURNING 1)
                 UPDATE peak.mq_offsets SET pulled_offset = $4 WHERE grp = $1 AND topic = $2 AND queue_id = $3`,
                [
                  grp,
                  queue.topic,
                  queue.queueId,
                  next,
                  first.toString(),
                  span,
                  delivered.length === span ? null : delivered,
                  params.invisibleMs,
                  consumerId,
                  delivered.length,
                ],
              );
            }
          }
        }
        if (claimed.length === 0) return [];
        const messages: DeliveredRow[] = [];
        if (redelivered.length > 0) {
          const { rows } = await c.query<DeliveredRow>(
            `SELECT ${DELIVERED_COLUMNS}
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

  /**
   * Ordered topics: every fresh message gets a delivery row as it enters the window; one
   * whose message group is `blocked` waits (visible_at NULL) behind its group's earlier one.
   * The ones handed out now are added to `claimed`.
   */
  async #insertDeliveries(
    c: pg.PoolClient,
    params: ClaimRequest,
    fresh: readonly DeliveredRow[],
    blocked: Set<string>,
    claimed: { queue_offset: string; deliveries: number }[],
  ): Promise<void> {
    const offs: string[] = [];
    const ids: string[] = [];
    const groups: (string | null)[] = [];
    const waiting: boolean[] = [];
    for (const m of fresh) {
      if (params.tags !== null && (m.tag === null || !params.tags.includes(m.tag))) continue;
      offs.push(m.queue_offset);
      ids.push(m.msg_id);
      groups.push(m.msg_group);
      waiting.push(m.msg_group !== null && blocked.has(m.msg_group));
      if (m.msg_group !== null) blocked.add(m.msg_group);
    }
    if (offs.length === 0) return;
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
        params.grp,
        params.queue.topic,
        params.queue.queueId,
        offs,
        ids,
        groups,
        waiting,
        params.invisibleMs,
        params.consumerId,
      ],
    );
    for (const t of taken) if (t.deliveries > 0) claimed.push(t);
  }

  /**
   * Deliveries a consumer of `grp` holds now (delivered, not acked, not timed out), over the
   * group's topics and its retry topic.
   */
  async inflightOfConsumer(grp: string, consumerId: string): Promise<number> {
    const { rows } = await this.#pool.query<{ n: number }>(
      `SELECT ((SELECT count(*) FROM peak.mq_deliveries
                 WHERE grp = $1 AND consumer_id = $2 AND visible_at > now())
             + (SELECT coalesce(sum(${CLAIM_UNACKED_SQL('c')}), 0) FROM peak.mq_claims c
                 WHERE c.grp = $1 AND c.consumer_id = $2 AND c.visible_at > now()))::int AS n`,
      [grp, consumerId],
    );
    return rows[0]?.n ?? 0;
  }
}
