/**
 * The long polls waiting on this node: each waits for new messages on its topics, for its
 * consumer (or another on its topic) leaving, for its client going away, or for its
 * timeout, whichever is first. Woken by appends on this node and by NOTIFY from others
 * (cross-node-signals.ts).
 */

interface Waiter {
  topics: Set<string>;
  consumer: string;
  wake: () => void;
}

/** Waiting long polls and the consumers that left. */
export class LongPollWaiters {
  readonly #waiters = new Set<Waiter>();
  /** Consumers (`grp|topic|consumerId`) that left, with when: a poll that sees its own ends. */
  readonly #left = new Map<string, number>();

  /**
   * Waits up to `ms` for news on one of `topics`, for `consumer` leaving, or for `signal`
   * (the poll's client went away), whichever is first.
   */
  wait(topics: Set<string>, consumer: string, ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || signal?.aborted === true) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        topics,
        consumer,
        wake: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', w.wake);
          this.#waiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(w.wake, ms);
      signal?.addEventListener('abort', w.wake);
      this.#waiters.add(w);
    });
  }

  /** Wakes the polls watching `topic`. */
  wake(topic: string): void {
    for (const w of this.#waiters) if (w.topics.has(topic)) w.wake();
  }

  /** Wakes every poll. */
  wakeEvery(): void {
    for (const w of this.#waiters) w.wake();
  }

  /**
   * Notes that `consumer` (`grp|topic|consumerId`) left (marks older than a minute are
   * dropped) and wakes its poll, and the polls on its topic: they take over its queues now.
   */
  wakeLeaving(consumer: string): void {
    const now = Date.now();
    for (const [k, at] of this.#left) if (now - at > 60_000) this.#left.delete(k);
    this.#left.set(consumer, now);
    const topic = consumer.split('|')[1] ?? '';
    for (const w of this.#waiters) if (w.consumer === consumer || w.topics.has(topic)) w.wake();
  }

  /** Whether `consumer` left since it was last asked; forgets the mark. */
  takeLeft(consumer: string): boolean {
    return this.#left.delete(consumer);
  }
}
