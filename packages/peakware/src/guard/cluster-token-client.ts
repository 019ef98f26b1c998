/**
 * The seam between a cluster flow rule and the token server that holds the shared budget.
 * `acquire` is synchronous (it sits on the hot path): a client keeps a batch of tokens
 * locally and refills it in the background; when it cannot say (server down, first batch
 * not back yet) it answers `fallback` and the rule falls back to its local threshold.
 */

/** The answer for one call. */
export type TokenResult = 'pass' | 'block' | 'fallback';

/** Hands out cluster tokens to cluster flow rules. */
export interface ClusterTokenClient {
  /**
   * Takes `acquire` tokens of the budget `flowId` (threshold `count` per second, shared
   * `global`ly or per instance `avg-local`).
   */
  acquire(
    flowId: string,
    count: number,
    thresholdType: 'global' | 'avg-local',
    acquire: number,
  ): TokenResult;
  /** Stops background work. */
  close(): void;
}
