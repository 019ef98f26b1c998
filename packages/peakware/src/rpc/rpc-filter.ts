/**
 * The interceptor seam of RPC: a chain of filters around every call, on the consumer
 * (around the whole logical call, retries included) and on the provider (after decoding,
 * validation and the deadline check, around the method). Flow control (`guard`),
 * telemetry and auth plug in here without rpc knowing them.
 */
import type { CallContext } from '../core/context.js';

/** What a filter sees of one call. */
export interface Invocation {
  /** `consumer` or `provider`. */
  readonly side: 'consumer' | 'provider';
  /** Service name. */
  readonly service: string;
  /** Service version. */
  readonly version: string;
  /** Method name. */
  readonly method: string;
  /** The argument (validated on the provider side). */
  readonly args: unknown;
  /** The call's context (deadline, caller, tags, stress flag, trace). */
  readonly context: CallContext;
  /** Whether the method is idempotent (known on both sides when the definition is). */
  readonly idempotent: boolean;
  /** The peer's address when known (`host:port`). */
  readonly remote?: string;
  /**
   * Provider side: the calling app as its verified identity proves it (see
   * caller-identity.ts); absent when the provider verifies no identities or the caller
   * presented none. Unlike `context.callerApp`, no caller can set it.
   */
  readonly caller?: string;
}

/**
 * One filter: do something before and/or after `next()`, or throw (a PeakError) to refuse
 * the call. Must call `next` at most once.
 */
export type RpcFilter = (invocation: Invocation, next: () => Promise<unknown>) => Promise<unknown>;

/** Runs `invocation` through `filters` in order, ending with `terminal`. */
export function runFilters(
  filters: readonly RpcFilter[],
  invocation: Invocation,
  terminal: () => Promise<unknown>,
): Promise<unknown> {
  if (filters.length === 0) return terminal();
  const step = (index: number): Promise<unknown> => {
    const filter = filters[index];
    if (filter === undefined) return terminal();
    return filter(invocation, () => step(index + 1));
  };
  return step(0);
}
