/**
 * The one retry and backoff helper of the SDK. Every loop that tries something again
 * (control-plane calls, watch streams reconnecting, RPC connections, the outbox relay,
 * consumers' long polls) takes its delays from a {@link Backoff} or runs through
 * {@link retry}, so delays grow, cap and jitter the same way everywhere, and tests replace
 * the sleep and the random source instead of waiting on real time.
 *
 * Delays are exponential: `initialMs * factor^n`, capped at `maxMs`, then jittered. The
 * default jitter is "equal" (uniform in [d/2, d]): never shorter than half the step, so a
 * fleet reconnecting after an outage spreads out without any instance hammering.
 */

/** How a delay grows between tries. Defaults are written in {@link BACKOFF_DEFAULTS}. */
export interface BackoffOptions {
  /** The first delay, ms. */
  initialMs?: number;
  /** The largest delay, ms. */
  maxMs?: number;
  /** Growth per try. */
  factor?: number;
  /**
   * `equal`: uniform in [d/2, d]; `full`: uniform in [0, d]; `none`: exactly d.
   */
  jitter?: 'equal' | 'full' | 'none';
  /** Random source in [0, 1), for tests. */
  random?: () => number;
}

/** The defaults of {@link BackoffOptions}, in one place. */
export const BACKOFF_DEFAULTS = {
  initialMs: 100,
  maxMs: 5000,
  factor: 2,
  jitter: 'equal',
} as const satisfies BackoffOptions;

/** Waits `ms`; rejects with the signal's reason when `signal` aborts first. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Resolves after `ms` (a referenced timer: it keeps the process alive while it waits). */
export const sleep: Sleep = (ms, signal) => wait(ms, signal, false);

/**
 * Like {@link sleep} on an unreferenced timer: a background loop (a watch stream waiting
 * to reconnect) never keeps the process alive on its own.
 */
export const sleepUnref: Sleep = (ms, signal) => wait(ms, signal, true);

function wait(ms: number, signal: AbortSignal | undefined, unref: boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (unref) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The delay before try `attempt + 1` after `attempt` failures (0: the first retry). */
export function backoffDelay(attempt: number, options: BackoffOptions = {}): number {
  const initial = options.initialMs ?? BACKOFF_DEFAULTS.initialMs;
  const max = options.maxMs ?? BACKOFF_DEFAULTS.maxMs;
  const factor = options.factor ?? BACKOFF_DEFAULTS.factor;
  // The exponent is capped so a long outage never overflows to Infinity.
  const step = Math.min(max, initial * factor ** Math.min(Math.max(0, attempt), 64));
  const random = options.random ?? Math.random;
  switch (options.jitter ?? BACKOFF_DEFAULTS.jitter) {
    case 'none':
      return step;
    case 'full':
      return random() * step;
    default:
      return step / 2 + (random() * step) / 2;
  }
}

/** A backoff with state: each {@link next} is longer (up to the cap) until {@link reset}. */
export class Backoff {
  readonly #options: BackoffOptions;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.#options = { ...options };
  }

  /** The next delay, ms; the one after it is longer. */
  next(): number {
    const delay = backoffDelay(this.#attempt, this.#options);
    this.#attempt = Math.min(this.#attempt + 1, 64);
    return delay;
  }

  /** Starts over from the first delay (after a success). */
  reset(): void {
    this.#attempt = 0;
  }

  /** Delays handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }
}

/** Options of {@link retry}. */
export interface RetryOptions extends BackoffOptions {
  /** Tries in all, the first included. Default 3. */
  attempts?: number;
  /** Whether a failure is worth another try. Default: every failure is. */
  retryable?: (err: unknown, attempt: number) => boolean;
  /** Waits between tries; tests pass one that records and resolves at once. */
  sleep?: Sleep;
  /** Stops waiting and rethrows the signal's reason when it aborts. */
  signal?: AbortSignal;
  /** Called before each wait, with the failure and the delay about to be waited. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/**
 * Runs `fn` (given the try's number, from 0) until it resolves, a failure is not
 * `retryable`, or `attempts` tries are spent; the last failure is rethrown.
 */
export async function retry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const wait = options.sleep ?? sleep;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (options.signal?.aborted === true) throw options.signal.reason;
      if (attempt + 1 >= attempts || options.retryable?.(err, attempt) === false) throw err;
      const delay = backoffDelay(attempt, options);
      options.onRetry?.(err, attempt, delay);
      await wait(delay, options.signal);
    }
  }
}
