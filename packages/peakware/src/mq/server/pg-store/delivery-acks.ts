/**
 * How a delivery ends: an ack marks it in its claim row (the last one deletes the row) or
 * deletes its delivery row (in an ordered topic the next message of its message group
 * becomes visible); a nack takes it out of its claim row first, then retries it (through the group's retry topic after
 * its backoff, or in place for ordered topics and broadcasting) or, after the last retry,
 * moves it to the dead-letter queue.
 */
import type pg from 'pg';
import { TopicNames } from '../../message-types.js';
import type {
  AckedBatch,
  AckResult,
  DeliveryRef,
  GroupSettings,
  MessageRow,
  NackResult,
  QueueRef,
} from '../message-records.js';
import {
  CLAIM_HOLDS_SQL,
  CLAIM_UNACKED_SQL,
  DETACH_FROM_CLAIM_SQL,
  DROP_SETTLED_CLAIM_SQL,
} from './claim-rows.js';
import type { PgDeadLetters } from './dead-letters.js';
import type { PgPendingTable } from './pending-table.js';
import type { PgTopicStore } from './topic-store.js';
import { inTransaction } from './transaction.js';

// Acks offsets held by claim rows ($1 group; $2, $3, $4 topic, queue, offset of each
// receipt, no two alike): a claim row the acks complete is deleted, the others note them. Returns per
// claim row the offsets it acked now and when the claim was delivered. The claim rows are
// locked first, in one order (so concurrent acks of one claim row queue up instead of
// deadlocking), and read as locked (so an ack that waited sees the acks before it).
const ACK_CLAIMS_SQL = `
  WITH x AS (SELECT * FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, q, o)),
  locked AS (
    SELECT c.grp, c.topic, c.queue_id, c.first_offset, c.span, c.delivered, c.acked, c.delivered_at
      FROM peak.mq_claims c
     WHERE c.grp = $1 AND EXISTS (
             SELECT 1 FROM x WHERE x.t = c.topic AND x.q = c.queue_id
                AND x.o >= c.first_offset AND x.o < c.first_offset + c.span)
     ORDER BY c.topic, c.queue_id, c.first_offset
       FOR UPDATE),
  hit AS (
    SELECT c.topic, c.queue_id, c.first_offset, min(c.delivered_at) AS delivered_at,
           array_agg((x.o - c.first_offset)::int) AS rel,
           min(${CLAIM_UNACKED_SQL('c')}) <= count(*) AS done
      FROM x JOIN locked c ON c.topic = x.t AND c.queue_id = x.q AND ${CLAIM_HOLDS_SQL('c', 'x.o')}
     GROUP BY c.topic, c.queue_id, c.first_offset),
  upd AS (
    UPDATE peak.mq_claims c SET acked = c.acked || hit.rel FROM hit
     WHERE NOT hit.done AND c.grp = $1 AND c.topic = hit.topic AND c.queue_id = hit.queue_id
       AND c.first_offset = hit.first_offset
    RETURNING c.topic, c.queue_id, c.first_offset),
  del AS (
    DELETE FROM peak.mq_claims c USING hit
     WHERE hit.done AND c.grp = $1 AND c.topic = hit.topic AND c.queue_id = hit.queue_id
       AND c.first_offset = hit.first_offset
    RETURNING c.topic, c.queue_id, c.first_offset)
  SELECT hit.topic, hit.queue_id, hit.first_offset::text, hit.rel, hit.delivered_at
    FROM hit JOIN (SELECT * FROM upd UNION ALL SELECT * FROM del) AS done
      ON done.topic = hit.topic AND done.queue_id = hit.queue_id AND done.first_offset = hit.first_offset`;

// The same as one statement of its own, committed without waiting for the WAL flush (the
// set_config is local to the statement's transaction and read at its commit): acks of
// normal topics need no transaction around them, so the common ack is one round trip
// instead of three (BEGIN, this, COMMIT).
const ACK_CLAIMS_ASYNC_SQL = `${ACK_CLAIMS_SQL.replace(
  'WITH x AS',
  "WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v), x AS",
)}
    CROSS JOIN async`;

/** Acks and nacks. */
export class PgDeliveryAcks {
  readonly #pool: pg.Pool;
  readonly #topics: PgTopicStore;
  readonly #pending: PgPendingTable;
  readonly #deadLetters: PgDeadLetters;
  readonly #appended: (topic: string) => void;

  /** `appended` is called when an ack made a parked message of an ordered topic visible. */
  constructor(
    pool: pg.Pool,
    topics: PgTopicStore,
    pending: PgPendingTable,
    deadLetters: PgDeadLetters,
    appended: (topic: string) => void,
  ) {
    this.#pool = pool;
    this.#topics = topics;
    this.#pending = pending;
    this.#deadLetters = deadLetters;
    this.#appended = appended;
  }

  /**
   * Acks deliveries: offsets in claim rows first (normal topics, first deliveries), then
   * delivery rows; in ordered topics the next message of each group becomes visible.
   */
  async ack(grp: string, refs: readonly DeliveryRef[]): Promise<AckResult> {
    if (refs.length === 0) return { acked: [], batches: [] };
    let anyOrdered = false;
    for (const t of new Set(refs.map((r) => r.topic)))
      if ((await this.#topics.topic(t))?.ordered === true) anyOrdered = true;
    if (!anyOrdered) {
      // Normal topics: the claim rows in one statement; only acks no claim row holds
      // (redeliveries) go on to the transaction below.
      const { batches, rest } = await this.#ackClaims(this.#pool, grp, refs, true);
      if (rest.length === 0) return { acked: [], batches };
      const more = await this.#ackInTransaction(grp, rest, true);
      return { acked: more.acked, batches: [...batches, ...more.batches] };
    }
    return this.#ackInTransaction(grp, refs);
  }

  /**
   * Acks offsets held by claim rows (of topics not ordered, since the caller passes them
   * only); returns the batches acked and the refs no claim row holds.
   */
  async #ackClaims(
    runner: pg.Pool | pg.PoolClient,
    grp: string,
    refs: readonly DeliveryRef[],
    async: boolean,
  ): Promise<{ batches: AckedBatch[]; rest: readonly DeliveryRef[] }> {
    const unordered = [
      ...new Map(refs.map((r) => [`${r.topic}\u0000${r.queueId}\u0000${r.offset}`, r])).values(),
    ];
    const batches: AckedBatch[] = [];
    if (unordered.length === 0) return { batches, rest: refs };
    const { rows } = await runner.query<{
      topic: string;
      queue_id: number;
      first_offset: string;
      rel: number[];
      delivered_at: Date;
    }>(async ? ACK_CLAIMS_ASYNC_SQL : ACK_CLAIMS_SQL, [
      grp,
      unordered.map((r) => r.topic),
      unordered.map((r) => r.queueId),
      unordered.map((r) => r.offset),
    ]);
    const inClaims = new Set<string>();
    for (const r of rows) {
      const first = BigInt(r.first_offset);
      // Ascending: a batch trace row is found by its first offset.
      const offsets = r.rel.sort((a, b) => a - b).map((n) => (first + BigInt(n)).toString());
      for (const o of offsets) inClaims.add(`${r.topic}\u0000${r.queue_id}\u0000${o}`);
      batches.push({ topic: r.topic, queueId: r.queue_id, offsets, deliveredAt: r.delivered_at });
    }
    return {
      batches,
      rest: refs.filter((r) => !inClaims.has(`${r.topic}\u0000${r.queueId}\u0000${r.offset}`)),
    };
  }

  /**
   * Acks in one transaction: ordered topics' queues locked first, then claim rows (unless
   * `claimsDone`: the caller has acked what claim rows hold), then delivery rows.
   */
  async #ackInTransaction(
    grp: string,
    refs: readonly DeliveryRef[],
    claimsDone = false,
  ): Promise<AckResult> {
    let ordered: string[] = [];
    return inTransaction(
      this.#pool,
      async (c) => {
        ordered = await this.#lockOrderedQueues(c, grp, refs);
        const { batches, rest } = claimsDone
          ? { batches: [], rest: refs }
          : await this.#ackClaims(
              c,
              grp,
              refs.filter((r) => !ordered.includes(r.topic)),
              false,
            );
        const remaining = [...refs.filter((r) => ordered.includes(r.topic)), ...rest];
        if (remaining.length === 0) return { acked: [], batches };
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
          [
            grp,
            remaining.map((r) => r.topic),
            remaining.map((r) => r.queueId),
            remaining.map((r) => r.offset),
          ],
        );
        await this.#promote(c, grp, rows);
        return {
          acked: rows.map((r) => ({ msgId: r.msg_id, deliveredAt: r.delivered_at })),
          batches,
        };
      },
      false,
    ).then((r) => {
      // A promoted message is new work: wake the long-polls waiting on its topic.
      for (const t of ordered) this.#appended(t);
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
      if ((await this.#topics.topic(t))?.ordered === true) ordered.push(t);
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
    ref: DeliveryRef,
    settings: GroupSettings,
    inPlace: boolean,
    reason: string,
    delayOverrideMs?: number,
  ): Promise<NackResult> {
    return inTransaction(
      this.#pool,
      async (c) => {
        const ordered = await this.#lockOrderedQueues(c, grp, [ref]);
        if (ordered.length === 0) {
          // A first delivery held by a claim row gets a delivery row of its own first.
          const detached = await c.query<{ first_offset: string }>(DETACH_FROM_CLAIM_SQL, [
            grp,
            ref.topic,
            ref.queueId,
            ref.offset,
          ]);
          const from = detached.rows[0]?.first_offset;
          if (from !== undefined)
            await c.query(DROP_SETTLED_CLAIM_SQL, [grp, ref.topic, ref.queueId, from]);
        }
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
          if (m !== undefined)
            await this.#deadLetters.addIn(c, deadLetterGroup, m, attempt, reason);
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
          await this.#pending.addPending(c, 'retry', [
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
}
