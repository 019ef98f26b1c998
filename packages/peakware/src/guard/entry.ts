/**
 * An admitted call: what `guard.entry()` returns. The caller does the work (after waiting
 * `waitMs` if a queueing rule spaced it) and then calls `exit()`, with the error if the work
 * failed, so statistics, breakers and concurrency limits see how it ended.
 */
import type { CircuitBreaker } from './circuit-breaker.js';
import type { ParamValueState } from './param-flow-checker.js';
import type { ResourceNode } from './resource-node.js';
import type { StatNode } from './stat-node.js';

/** Who finishes an entry (the guard). */
export interface EntryOwner {
  /** Records the end of `entry`. */
  exitEntry(entry: Entry, error: unknown): void;
  /** The owner's clock, epoch ms (`startedAt` is on it). */
  now(): number;
}

/** Options of one guarded call. */
export interface EntryOptions {
  /** The caller app; default `currentContext()?.callerApp`. */
  origin?: string;
  /** The call's arguments, for hot-parameter rules. */
  args?: readonly unknown[];
  /**
   * `in` for calls coming into this process (HTTP and RPC server side): they count for
   * system protection. Default `out`.
   */
  type?: 'in' | 'out';
  /** The entrance (for chain rules); default the outermost `guard.run` resource. */
  entrance?: string;
}

/** One admitted call; call {@link Entry.exit} exactly once when the work ends. */
export class Entry {
  /** The resource. */
  readonly resource: string;
  /** The caller app, '' when unknown. */
  readonly origin: string;
  /** The arguments given for hot-parameter rules. */
  readonly args: readonly unknown[] | undefined;
  /** True for inbound calls (count for system protection). */
  readonly inbound: boolean;
  /** How long to wait before starting the work (queueing rules), ms; 0 means start now. */
  waitMs = 0;
  /** When the work starts (entry time + waitMs), epoch ms; RT is measured from here. */
  startedAt = 0;
  /** @internal */
  readonly node: ResourceNode;
  /** @internal */
  originNode: StatNode | undefined;
  /** @internal */
  entranceNode: StatNode | undefined;
  /** @internal The entrance this call came through. */
  entrance: string | undefined;
  /** @internal Per-value concurrency slots taken by param rules. */
  paramHeld: ParamValueState[] | undefined;
  /** @internal Breakers this call is the half-open probe of. */
  probes: CircuitBreaker[] | undefined;
  /** @internal */
  done = false;
  readonly #owner: EntryOwner;

  constructor(
    owner: EntryOwner,
    node: ResourceNode,
    origin: string,
    args: readonly unknown[] | undefined,
    inbound: boolean,
  ) {
    this.#owner = owner;
    this.node = node;
    this.resource = node.resource;
    this.origin = origin;
    this.args = args;
    this.inbound = inbound;
  }

  /** Ends the call; pass the error when the work failed. Later calls do nothing. */
  exit(error?: unknown): void {
    if (this.done) return;
    this.done = true;
    this.#owner.exitEntry(this, error);
  }

  /** Resolves when the call may start (after `waitMs`). */
  ready(): Promise<void> {
    const wait = this.startedAt - this.#owner.now();
    if (wait <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, wait));
  }
}
