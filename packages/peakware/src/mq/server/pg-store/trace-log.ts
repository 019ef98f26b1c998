/**
 * Trace events (`mq_trace`): what happened to a message after it was stored. Events are
 * buffered and written in one multi-row INSERT every 50 ms (or at 5 000), off the send and
 * receive paths; best effort. A batch event (the acks of one claim row) is one row naming
 * its queue and offsets, found by a message's stored copies when its trace is read.
 */
import type pg from 'pg';
import type { Logger } from '../../../core/logger.js';
import type { BatchTraceEvent, TraceEvent, TraceRow } from '../message-records.js';
import { MAX_CLAIM_SPAN } from './claim-rows.js';

/** The buffered trace writer and its reader. */
export class PgTraceLog {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  #traceBuffer: TraceEvent[] = [];
  #batchBuffer: BatchTraceEvent[] = [];
  #traceTimer: NodeJS.Timeout | undefined;
  #traceWriting: Promise<void> = Promise.resolve();

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  /**
   * Records trace events. They are buffered and written in one multi-row INSERT every
   * 50 ms (async commit), off the send and receive paths; best effort: a failed write is
   * logged, never fails the caller.
   */
  trace(events: readonly TraceEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    this.#traceBuffer.push(...events);
    return this.#buffered();
  }

  /** Records batch events (one row each), buffered like {@link trace}. */
  traceBatches(events: readonly BatchTraceEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    this.#batchBuffer.push(...events);
    return this.#buffered();
  }

  #buffered(): Promise<void> {
    if (this.#traceBuffer.length + this.#batchBuffer.length >= 5000) return this.flushTrace();
    this.#traceTimer ??= setTimeout(() => void this.flushTrace(), 50);
    return Promise.resolve();
  }

  /** Writes buffered trace events now. */
  async flushTrace(): Promise<void> {
    if (this.#traceTimer !== undefined) clearTimeout(this.#traceTimer);
    this.#traceTimer = undefined;
    await this.#traceWriting;
    const events = this.#traceBuffer;
    const batches = this.#batchBuffer;
    if (events.length === 0 && batches.length === 0) return;
    this.#traceBuffer = [];
    this.#batchBuffer = [];
    const n = events.length + batches.length;
    const col = <T>(a: (e: TraceEvent) => T, b: (e: BatchTraceEvent) => T): T[] => {
      const out: T[] = new Array(n);
      events.forEach((e, i) => {
        out[i] = a(e);
      });
      batches.forEach((e, i) => {
        out[events.length + i] = b(e);
      });
      return out;
    };
    // One statement, committed without waiting for the WAL flush (the set_config holds for
    // its own transaction): losing the last few ms of trace rows in a crash is acceptable.
    this.#traceWriting = this.#pool
      .query(
        `WITH async AS (SELECT set_config('synchronous_commit', 'off', true) AS v)
         INSERT INTO peak.mq_trace (msg_id, at, event, grp, consumer, detail, delivered_at, topic, queue_id, offsets)
         SELECT i, coalesce(a, clock_timestamp()), e, g, c, d, da, t, q, o::bigint[]
           FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
                       $7::timestamptz[], $8::text[], $9::int[], $10::text[])
                AS x(i, a, e, g, c, d, da, t, q, o), async`,
        [
          col(
            (e) => e.msgId,
            () => null,
          ),
          col(
            (e) => e.at ?? null,
            () => null,
          ),
          col(
            (e) => e.event,
            (e) => e.event,
          ),
          col(
            (e) => e.grp ?? null,
            (e) => e.grp,
          ),
          col(
            (e) => e.consumer ?? null,
            (e) => e.consumer,
          ),
          col(
            (e) => e.detail ?? null,
            () => null,
          ),
          col(
            (e) => e.deliveredAt ?? null,
            (e) => e.deliveredAt,
          ),
          col(
            () => null,
            (e) => e.topic,
          ),
          col(
            () => null,
            (e) => e.queueId,
          ),
          col(
            () => null,
            (e) => `{${e.offsets.join(',')}}`,
          ),
        ],
      )
      .then(
        () => undefined,
        (err) => this.#logger.warn({ err }, 'mq: could not record trace events'),
      );
    await this.#traceWriting;
  }

  /**
   * Trace events of a message, oldest first: its own rows, and the batch rows that name
   * one of its stored copies (`copies`: topic, queue, offset).
   */
  async traceOf(
    id: string,
    copies: readonly { topic: string; queue_id: number; queue_offset: string }[] = [],
  ): Promise<TraceRow[]> {
    const { rows } = await this.#pool.query(
      `SELECT at, event, grp, consumer, detail, delivered_at FROM peak.mq_trace WHERE msg_id = $1
       UNION ALL
       SELECT t.at, t.event, t.grp, t.consumer, t.detail, t.delivered_at
         FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, q, o)
         JOIN peak.mq_trace t
           ON t.offsets IS NOT NULL AND t.topic = x.t AND t.queue_id = x.q
          AND t.offsets[1] BETWEEN x.o - $5 AND x.o AND x.o = ANY (t.offsets)
       ORDER BY at`,
      [
        id,
        copies.map((c) => c.topic),
        copies.map((c) => c.queue_id),
        copies.map((c) => c.queue_offset),
        MAX_CLAIM_SPAN,
      ],
    );
    return rows;
  }
}
