/**
 * A retry budget (Finagle's): every call deposits `ratio` of a retry, every retry
 * withdraws one, plus a small floor per second so a quiet client can still retry. When a
 * provider fails, retries stay a bounded fraction of traffic instead of multiplying it.
 */

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries allowed per call made. Default 0.2 (20 %). */
  ratio?: number;
  /** Retries allowed per second regardless of traffic. Default 10. */
  minPerSecond?: number;
}

/** A token bucket of retries. */
export class RetryBudget {
  readonly #ratio: number;
  readonly #minPerSecond: number;
  #balance: number;
  #floor: number;
  #floorAt = Date.now();

  constructor(options: RetryBudgetOptions = {}) {
    this.#ratio = options.ratio ?? 0.2;
    this.#minPerSecond = options.minPerSecond ?? 10;
    this.#balance = 0;
    this.#floor = this.#minPerSecond;
  }

  /** Records a call (first attempt). */
  deposit(): void {
    // Cap the balance so a long quiet-but-busy period cannot bank a storm.
    this.#balance = Math.min(this.#balance + this.#ratio, 100 + this.#minPerSecond);
  }

  /** Takes one retry if the budget allows it. */
  tryWithdraw(): boolean {
    if (this.#balance >= 1) {
      this.#balance -= 1;
      return true;
    }
    const now = Date.now();
    if (now - this.#floorAt >= 1000) {
      this.#floor = this.#minPerSecond;
      this.#floorAt = now;
    }
    if (this.#floor >= 1) {
      this.#floor -= 1;
      return true;
    }
    return false;
  }
}
