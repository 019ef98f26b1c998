/**
 * The relay of due pending messages: moves due delayed, retried and committed outbox or
 * half messages into their queues, in bulk inside PostgreSQL first (delayed and outbox
 * messages without a message group), then row by row. It runs on every tick, when kicked
 * (NOTIFY `peak_mq_pending`), and exactly when the next pending message falls due if that
 * is before the next tick; one node at a time does the work (the store's advisory lock).
 */
import { errorMessage } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import type { MessageStore } from '../message-store.js';
import type { BrokerRunState } from './broker-options.js';
import type { BrokerStats } from './broker-stats.js';

/** Pending messages moved into queues per relay transaction. */
const RELAY_BATCH = 5000;

/** Pending messages moved per bulk relay statement (they never leave PostgreSQL). */
const RELAY_BULK = 20_000;

/** This node's relay loop. */
export class PendingRelay {
  readonly #store: MessageStore;
  readonly #stats: BrokerStats;
  readonly #logger: Logger;
  readonly #state: BrokerRunState;
  readonly #intervalMs: number;
  #interval: NodeJS.Timeout | undefined;
  #relaying: Promise<void> | undefined;
  #relayAgain = false;
  #relayTimer: NodeJS.Timeout | undefined;

  /** `intervalMs`: the tick (the longest a due message waits when no wake-up reaches it). */
  constructor(
    store: MessageStore,
    stats: BrokerStats,
    logger: Logger,
    state: BrokerRunState,
    intervalMs: number,
  ) {
    this.#store = store;
    this.#stats = stats;
    this.#logger = logger;
    this.#state = state;
    this.#intervalMs = intervalMs;
  }

  /** Starts the tick. */
  start(): void {
    this.#interval = setInterval(() => this.kick(), this.#intervalMs);
    this.#interval.unref();
  }

  /** Stops the tick and the due-time wake-up; a pass in progress runs on (see `idle`). */
  halt(): void {
    clearInterval(this.#interval);
    clearTimeout(this.#relayTimer);
  }

  /** Resolves once no pass is running. */
  async idle(): Promise<void> {
    await this.#relaying?.catch(() => undefined);
  }

  /** Runs a relay pass now, or right after the one in progress. */
  kick(): void {
    if (this.#state.stopped) return;
    if (this.#relaying !== undefined) {
      this.#relayAgain = true;
      return;
    }
    this.#relaying = (async () => {
      try {
        do {
          this.#relayAgain = false;
          // Bulk moves first (delayed and outbox messages without a group, inside
          // PostgreSQL), then everything else row by row.
          for (;;) {
            const { moved, topic } = await this.#store.relayDueBulk(RELAY_BULK);
            if (moved > 0 && topic !== null) this.#stats.count(topic, 'in', moved);
            if (moved === 0 || this.#state.stopped) break;
          }
          for (;;) {
            const { moved, rows } = await this.#store.relayDue(RELAY_BATCH);
            if (moved > 0) {
              for (const r of rows) this.#stats.count(r.origin_topic ?? r.topic, 'in', 1);
              // A delayed or outbox message's move is its 'stored' event (the copy's
              // stored_at); only retries, whose copy is a second one, get a row.
              await this.#store.trace(
                rows
                  .filter((r) => r.kind === 'retry')
                  .map((r) => ({ msgId: r.msg_id, event: 'requeued', detail: 'retry due' })),
              );
            }
            if (moved < RELAY_BATCH || this.#state.stopped) break;
          }
        } while (this.#relayAgain && !this.#state.stopped);
        // Wake exactly when the next pending message falls due, not at the next tick.
        const next = await this.#store.nextDue();
        const wait = next === undefined ? Infinity : next.getTime() - Date.now();
        if (wait < this.#intervalMs && !this.#state.stopped) {
          clearTimeout(this.#relayTimer);
          this.#relayTimer = setTimeout(() => this.kick(), Math.max(0, wait) + 1);
          this.#relayTimer.unref();
        }
      } catch (err) {
        if (!this.#state.stopped)
          this.#logger.warn({ err: errorMessage(err) }, 'mq: relay pass failed; retrying');
      } finally {
        this.#relaying = undefined;
      }
    })();
  }
}
