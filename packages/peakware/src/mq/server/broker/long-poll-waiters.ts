/**
 * The long polls waiting on this node: each waits for new messages on its topics, for its
 * consumer leaving, or for its timeout, whichever is first. Woken by appends on this node
 * and by NOTIFY from others (cross-node-signals.ts).
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

  /** Waits up to `ms` for news on one of `topics` or for `consumer` leaving. */
  wait(topics: Set<string>, consumer: string, ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        topics,
        consumer,
        wake: () => {
          clearTimeout(timer);
          this.#waiters.delete(w);
          resolve();
        },
      };
      const timer = setTimeout(w.wake, ms);
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

  /** Notes that `consumer` left (marks older than a minute are dropped) and wakes its poll. */
  wakeLeaving(consumer: string): void {
    const now = Date.now();
    for (const [k, at] of this.#left) if (now - at > 60_000) this.#left.delete(k);
    this.#left.set(consumer, now);
    for (const w of this.#waiters) if (w.consumer === consumer) w.wake();
  }

  /** Whether `consumer` left since it was last asked; forgets the mark. */
  takeLeft(consumer: string): boolean {
    return this.#left.delete(consumer);
  }
}
