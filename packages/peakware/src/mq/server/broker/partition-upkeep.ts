/**
 * Partition upkeep: daily partitions of the message and trace tables are created ahead and
 * expired ones dropped, when the broker starts and then every hour.
 */
import type { Logger } from '../../../core/logger.js';
import type { MessageStore } from '../message-store.js';

/** The broker's hourly partition upkeep. */
export class PartitionUpkeep {
  readonly #store: MessageStore;
  readonly #retentionMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;

  constructor(store: MessageStore, retentionMs: number, logger: Logger) {
    this.#store = store;
    this.#retentionMs = retentionMs;
    this.#logger = logger;
  }

  /** Brings the partitions up to date now; a failure is the caller's (it fails the start). */
  async runNow(): Promise<void> {
    await this.#store.maintainPartitions(this.#retentionMs);
  }

  /** Repeats the upkeep every hour; a failed round is logged. */
  start(): void {
    this.#timer = setInterval(() => {
      this.#store
        .maintainPartitions(this.#retentionMs)
        .catch((err) => this.#logger.warn({ err }, 'mq: partition upkeep failed'));
    }, 3_600_000);
    this.#timer.unref();
  }

  /** Stops the hourly upkeep. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
