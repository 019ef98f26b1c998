/**
 * The relay of due pending messages: moves due delayed, retried and committed outbox or
 * half messages into their queues, in bulk inside PostgreSQL first (delayed and outbox
 * messages without a message group), then row by row. It wakes when something is due, not
 * on a short fixed tick: when kicked (NOTIFY `peak_mq_pending`: committed halves and
 * outbox rows, resent dead letters), when this node stored pending rows due sooner than
 * its next wake-up (`wakeAt`), and exactly at the next due time it read after a pass. A
 * slow tick (`relayIntervalMs`, default 5 s) is the safety net for rows another node
 * stored before it went away; an idle tick costs one statement. One node at a time does
 * the work (the store's advisory lock).
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
  /** When the due-time timer fires (epoch ms), if set. */
  #timerAt: number | undefined;

  /** `intervalMs`: the safety tick (the longest a due message waits when no wake-up reaches it). */
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
    this.#timerAt = undefined;
  }

  /** Runs a pass at `at` (this node stored pending rows due then), unless one is due sooner. */
  wakeAt(at: Date): void {
    if (this.#state.stopped) return;
    const when = at.getTime();
    if (when - Date.now() >= this.#intervalMs) return; // the tick comes first
    if (this.#timerAt !== undefined && this.#timerAt <= when) return;
    this.#schedule(when);
  }

  #schedule(when: number): void {
    clearTimeout(this.#relayTimer);
    this.#timerAt = when;
    this.#relayTimer = setTimeout(
      () => {
        this.#timerAt = undefined;
        this.kick();
      },
      Math.max(0, when - Date.now()) + 1,
    );
    this.#relayTimer.unref();
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
        // Nothing due (the idle tick's case): one cheap read, no relay transactions. A
        // kick that arrives meanwhile still makes the pass run.
        this.#relayAgain = false;
        let next = await this.#store.nextDue();
        if (next !== undefined && next.getTime() <= Date.now()) this.#relayAgain = true;
        while (this.#relayAgain && !this.#state.stopped) {
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
          next = await this.#store.nextDue();
        }
        // Wake exactly when the next pending message falls due, not at the next tick (a
        // row still due after a pass, held by another node's relay: shortly).
        const wait = next === undefined ? Infinity : next.getTime() - Date.now();
        if (next !== undefined && wait < this.#intervalMs && !this.#state.stopped)
          this.#schedule(Math.max(next.getTime(), Date.now() + 10));
      } catch (err) {
        if (!this.#state.stopped)
          this.#logger.warn({ err: errorMessage(err) }, 'mq: relay pass failed; retrying');
      } finally {
        this.#relaying = undefined;
      }
    })();
  }
}
