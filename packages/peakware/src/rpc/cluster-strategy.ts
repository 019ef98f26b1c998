/**
 * Cluster strategies: what a call does when an instance fails.
 *
 * - `failover`: try another instance, up to `retries` more times, under the retry budget.
 *   A call that provably did not run (not sent, refused while draining or overloaded) is
 *   retried for any method; a call lost in flight only for idempotent methods, so a
 *   non-idempotent call never runs twice silently.
 * - `failfast`: one attempt; errors go to the caller.
 * - `failsafe`: one attempt; errors are logged and the call resolves `undefined`.
 * - `forking`: `forks` instances in parallel, the first success wins (idempotent methods
 *   only; others behave as failfast).
 */
import { ErrorCodes, isPeakError, PeakError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Endpoint } from './endpoint.js';
import type { RetryBudget } from './retry-budget.js';

/** The built-in strategies by name. */
export type ClusterStrategyName = 'failover' | 'failfast' | 'failsafe' | 'forking';

/** What a strategy gets for one logical call. */
export interface ClusterCall {
  /** Whether the method may run twice. */
  idempotent: boolean;
  /** Picks an endpoint not in `exclude`; throws PEAK_RPC_NO_PROVIDER when none is left. */
  select(exclude: ReadonlySet<Endpoint>): Endpoint;
  /** One attempt on one endpoint. */
  attempt(endpoint: Endpoint): Promise<unknown>;
  /** What the call is, for errors and logs. */
  describe: string;
}

/** How a call is spread over instances when one fails. */
export interface ClusterStrategy {
  /** Runs the call to a result or a final error. */
  invoke(call: ClusterCall): Promise<unknown>;
}

/** True when the error proves the call never ran on the provider. */
export function notExecuted(err: unknown): boolean {
  if (!isPeakError(err)) return false;
  switch (err.code) {
    case ErrorCodes.RPC_UNAVAILABLE:
    case ErrorCodes.RPC_SHUTTING_DOWN:
    case ErrorCodes.RPC_UNKNOWN_SERVICE:
      return true;
    case ErrorCodes.RPC_OVERLOADED:
      return err.details.sent === false;
    default:
      return false;
  }
}

/** Whether failover may retry after `err`. */
export function retryable(err: unknown, idempotent: boolean): boolean {
  if (notExecuted(err)) return true;
  return idempotent && isPeakError(err, ErrorCodes.RPC_CONNECTION_LOST);
}

const NONE: ReadonlySet<Endpoint> = new Set();

/** Failover under a retry budget (see the module comment). */
export class FailoverStrategy implements ClusterStrategy {
  readonly #retries: number;
  readonly #budget: RetryBudget;
  readonly #logger: Logger | undefined;

  /** `logger` gets a debug line for every attempt that fails over to another instance. */
  constructor(retries: number, budget: RetryBudget, logger?: Logger) {
    this.#retries = retries;
    this.#budget = budget;
    this.#logger = logger;
  }

  async invoke(call: ClusterCall): Promise<unknown> {
    this.#budget.deposit();
    // The set of tried endpoints is only made when a retry needs it (the common path has none).
    let tried: Set<Endpoint> | undefined;
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      let endpoint: Endpoint;
      try {
        endpoint = call.select(tried ?? NONE);
      } catch (err) {
        throw lastError ?? err;
      }
      try {
        return await call.attempt(endpoint);
      } catch (err) {
        lastError = err;
        tried ??= new Set();
        tried.add(endpoint);
        if (!retryable(err, call.idempotent)) {
          if (isPeakError(err, ErrorCodes.RPC_CONNECTION_LOST) && !call.idempotent) {
            throw new PeakError(
              ErrorCodes.RPC_CONNECTION_LOST,
              `${call.describe} is not idempotent and was in flight when the connection to ${endpoint.address} broke; it was not retried, so it ran at most once: check its effect before calling again`,
              { cause: err, details: { ...err.details, retried: false } },
            );
          }
          throw err;
        }
        if (attempt === this.#retries) break;
        if (!this.#budget.tryWithdraw()) {
          throw new PeakError(
            isPeakError(err) ? err.code : ErrorCodes.RPC_UNAVAILABLE,
            `${isPeakError(err) ? err.message : String(err)} (not retried: the retry budget is spent, retries are capped to protect the providers)`,
            { cause: err, details: isPeakError(err) ? err.details : {} },
          );
        }
        // A call that moved is otherwise invisible (it succeeds elsewhere): say why it moved.
        this.#logger?.debug(
          { err, provider: endpoint.address, attempt: attempt + 1 },
          `${call.describe} failed on one instance; trying another`,
        );
      }
    }
    throw lastError;
  }
}

/** One attempt, errors to the caller. */
export class FailfastStrategy implements ClusterStrategy {
  invoke(call: ClusterCall): Promise<unknown> {
    return call.attempt(call.select(new Set()));
  }
}

/** One attempt; a failure is logged and the call resolves `undefined`. */
export class FailsafeStrategy implements ClusterStrategy {
  readonly #logger: Logger | undefined;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  async invoke(call: ClusterCall): Promise<unknown> {
    try {
      return await call.attempt(call.select(new Set()));
    } catch (err) {
      this.#logger?.warn({ err }, `${call.describe} failed; failsafe returns undefined`);
      return undefined;
    }
  }
}

/** Parallel attempts on `forks` instances, first success wins (idempotent methods only). */
export class ForkingStrategy implements ClusterStrategy {
  readonly #forks: number;

  constructor(forks: number) {
    this.#forks = Math.max(1, forks);
  }

  invoke(call: ClusterCall): Promise<unknown> {
    if (!call.idempotent) return call.attempt(call.select(new Set()));
    const chosen = new Set<Endpoint>();
    for (let i = 0; i < this.#forks; i++) {
      try {
        chosen.add(call.select(chosen));
      } catch (err) {
        if (chosen.size === 0) throw err;
        break;
      }
    }
    return Promise.any([...chosen].map((e) => call.attempt(e))).catch((err: AggregateError) => {
      throw err.errors[0];
    });
  }
}
