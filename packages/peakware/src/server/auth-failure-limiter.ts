/**
 * Failed authentications per client address, so a wrong token cannot be guessed at speed:
 * after `maxFailures` within `windowMs` an address is refused (429 PEAK_AUTH_RATE_LIMITED)
 * until its oldest failure leaves the window. Counts live in memory per node (a guesser
 * spread over N nodes gets N times the budget, still far below a useful guessing rate for a
 * 256-bit token). Bounded: at most `maxAddresses` addresses are tracked; the oldest go first.
 */

/** Options of {@link AuthFailureLimiter}. */
export interface AuthFailureLimiterOptions {
  /** Failures allowed per address in the window. Default 10. */
  maxFailures?: number;
  /** The window, ms. Default 60 000. */
  windowMs?: number;
  /** Addresses tracked at most. Default 10 000. */
  maxAddresses?: number;
  /** The clock, epoch ms (tests pass a fake one). Default `Date.now`. */
  now?: () => number;
}

/** Counts failed authentications per address in a sliding window. */
export class AuthFailureLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #maxAddresses: number;
  readonly #now: () => number;
  readonly #failures = new Map<string, number[]>();
  /** Failed authentications seen, all addresses (for /metrics). */
  failures = 0;
  /** Requests refused because their address was over the limit. */
  refused = 0;
  /** Requests with a working credential that does not allow what they asked (403). */
  denied = 0;

  constructor(options: AuthFailureLimiterOptions = {}) {
    this.#max = options.maxFailures ?? 10;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxAddresses = options.maxAddresses ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  #recent(address: string): number[] {
    const list = this.#failures.get(address);
    if (list === undefined) return [];
    const since = this.#now() - this.#windowMs;
    while (list.length > 0 && list[0]! <= since) list.shift();
    if (list.length === 0) this.#failures.delete(address);
    return list;
  }

  /** Milliseconds `address` must wait before it may try again; 0 when it may now. */
  retryAfterMs(address: string): number {
    const list = this.#recent(address);
    if (list.length < this.#max) return 0;
    this.refused++;
    return Math.max(1, list[list.length - this.#max]! + this.#windowMs - this.#now());
  }

  /** Records one failed authentication from `address`. */
  fail(address: string): void {
    this.failures++;
    const list = this.#recent(address);
    if (list.length === 0) {
      if (this.#failures.size >= this.#maxAddresses) {
        const oldest = this.#failures.keys().next().value;
        if (oldest !== undefined) this.#failures.delete(oldest);
      }
      this.#failures.set(address, list);
    }
    list.push(this.#now());
  }
}
