/**
 * Trace events (`mq_trace`): what happened to a message after it was stored. Events are
 * buffered and written in one multi-row INSERT every 50 ms (or at 5 000), off the send and
 * receive paths; best effort.
 */
import type pg from 'pg';
import type { Logger } from '../../../core/logger.js';
import type { TraceEvent, TraceRow } from '../message-records.js';
import { inTransaction } from './transaction.js';

/** The buffered trace writer and its reader. */
export class PgTraceLog {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  #traceBuffer: TraceEvent[] = [];
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

  /** Trace events of a message, oldest first. */
  async traceOf(id: string): Promise<TraceRow[]> {
    const { rows } = await this.#pool.query(
      'SELECT at, event, grp, consumer, detail, delivered_at FROM peak.mq_trace WHERE msg_id = $1 ORDER BY at',
      [id],
    );
    return rows;
  }
}
