/**
 * How broker nodes sharing one PostgreSQL wake each other, over LISTEN/NOTIFY: `peak_mq`
 * (a topic has new messages: wake its long polls), `peak_mq_leave` (a consumer left: end
 * its long poll wherever it is) and `peak_mq_pending` (a pending message became due: run
 * the relay; sent by the store). Without the LISTEN session long polls fall back to polling.
 */
import type pg from 'pg';
import type { Logger } from '../../../core/logger.js';

/** What a node does when another one signals. */
export interface SignalHandlers {
  /** `topic` has new messages. */
  appended(topic: string): void;
  /** A consumer (`grp|topic|consumerId`) left its group. */
  left(consumer: string): void;
  /** A pending message is due. */
  pending(): void;
}

/** This node's LISTEN session and its NOTIFYs. */
export class CrossNodeSignals {
  readonly #pool: pg.Pool;
  readonly #logger: Logger;
  readonly #notifyAt = new Map<string, number>();
  #listener: pg.PoolClient | undefined;

  constructor(pool: pg.Pool, logger: Logger) {
    this.#pool = pool;
    this.#logger = logger;
  }

  /**
   * Tells other nodes `topic` has new messages, at most every 20 ms per topic; sent on the
   * next turn, after the append that called it has committed.
   */
  appended(topic: string): void {
    const last = this.#notifyAt.get(topic) ?? 0;
    if (Date.now() - last < 20) return;
    this.#notifyAt.set(topic, Date.now());
    setImmediate(() => {
      this.#pool.query("SELECT pg_notify('peak_mq', $1)", [topic]).catch(() => undefined);
    });
  }

  /** Ends the long poll of `consumer` (`grp|topic|consumerId`) on whichever node holds it. */
  async left(consumer: string): Promise<void> {
    await this.#pool.query("SELECT pg_notify('peak_mq_leave', $1)", [consumer]);
  }

  /** Opens the LISTEN session; a failure is logged and long polls fall back to polling. */
  async listen(on: SignalHandlers): Promise<void> {
    try {
      const client = await this.#pool.connect();
      client.on('notification', (n) => {
        if (n.channel === 'peak_mq' && n.payload !== undefined) on.appended(n.payload);
        else if (n.channel === 'peak_mq_leave' && n.payload !== undefined) on.left(n.payload);
        else if (n.channel === 'peak_mq_pending') on.pending();
      });
      client.on('error', (err) => {
        this.#logger.warn({ err }, 'mq: LISTEN connection lost; long polls fall back to polling');
        this.#listener = undefined;
      });
      await client.query('LISTEN peak_mq');
      await client.query('LISTEN peak_mq_pending');
      await client.query('LISTEN peak_mq_leave');
      this.#listener = client;
    } catch (err) {
      this.#logger.warn({ err }, 'mq: LISTEN failed; long polls fall back to polling');
    }
  }

  /** Closes the LISTEN session. */
  close(): void {
    const l = this.#listener;
    this.#listener = undefined;
    if (l !== undefined) {
      // Close the session instead of pooling it: back in the pool it would keep the
      // "LISTEN connection lost" handler and log it when PostgreSQL stops after us.
      l.removeAllListeners('error');
      l.on('error', () => undefined);
      l.release(true);
    }
  }
}
